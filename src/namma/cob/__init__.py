"""Close of business (COB): the nightly batch for a business date. See docs/cob.md."""
