"""Withdrawals (R15-R22): the use cases and their doors.

- `services`: receive a statement (every channel), proof of dispatch, goods received,
  inspection, the refund through `orders.services.refunds`, closing orders
- `proof`: content sniffing of the proof of dispatch customers upload
- `shipping`: what withdrawals need from delivery (return code, stopping a shipment that
  is not registered yet, the `return_delivered` callback)
- `emails`: the acknowledgement (R19)
- `web`: the withdrawal button pages (R18); the API is `returns.api.withdrawals`
- (the admin is `returns.admin.withdrawals`: staff entry, goods received, inspection)
- `deadlines`: closing orders whose period is over and nothing is open
"""
