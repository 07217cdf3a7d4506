"""The Textual app (`tinygpt` with no command). Importing this package imports nothing heavy."""
