"""Pure maths on arrays: RFM scores, BG/NBD, satisfaction metrics, the churn rule. No I/O, no
store: numbers in, numbers out."""
