"""Use cases of the orders app, one module per area:

- `checkout`: place_order (R1-R9)
- `lifecycle`: confirm, record_contact, cancel_by_customer, cancel_order (R12, T3.4)
- `payments`: record_payment, overpayment and late-payment refunds (R10, R11)
- `bank`: bank-statement import and matching (R11)
- `invoicing`: gapless invoice numbers, invoices and credit notes, the PDF (R9)
- `refunds`: the one service every refund goes through, approval, SEPA export
- `substitution`: unavailable goods and substitutes (R13)
- `deadlines`: run_deadlines (R10, R12, overdue refunds)
"""
