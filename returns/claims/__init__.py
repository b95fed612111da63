"""Conformity claims (R23-R25): the use cases, their emails, deadline job and selectors.

- `rules`: the money arithmetic of the remedies (pure)
- `photos`: content sniffing of the evidence customers attach
- `services`: the use cases, from `receiving` (receive a claim, R23, R25) and
  `decisions` (every staff decision, R24, R25)
- `emails`: the customer emails at receipt and at each decision
- `deadlines`: overdue answers flagged by run_deadlines (R25)
- `selectors`: reads, among them the orders with an open claim (R28)
- `holds`, `personal_data`: the legal hold and the retention declarations (R28)
- `shipments`: the free outbound shipment of a replacement (R24)
"""
