"""Who may see what, and personal data kept safe: the reader's access decision and data scope,
encrypted and masked ID numbers and phones, their check digits, and the tamper-evident audit log."""
