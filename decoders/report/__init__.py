"""What people read: terminal tables and machine-readable JSON."""
