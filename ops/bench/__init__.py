"""``hookyard bench``: scenarios that measure the fleet on this machine and print one JSON line each."""
