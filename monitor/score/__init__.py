"""Score stage: disclosures + market data → per-company thesis scorecards and alert decisions."""
