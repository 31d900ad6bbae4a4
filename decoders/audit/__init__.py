"""The judgement: measure each phase, flag findings, decide a verdict."""
