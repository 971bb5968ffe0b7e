"""Small shared utilities: atomic I/O, run directories, seeding, devices."""
