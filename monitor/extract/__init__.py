"""Extract stage: documents → sentences → disclosures (GUIDE schema), driven by ``rules/``."""
