"""Channel providers: one small class per channel, all keeping the `Provider` contract in ports.py."""
