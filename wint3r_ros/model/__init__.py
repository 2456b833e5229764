"""The WinT3R network (our implementation from the paper's facts), its configurations,
checkpoint loading and the parity check against the authors' numbers."""
