"""The accounting export: the FEC file, its checks, and the files beside it."""
