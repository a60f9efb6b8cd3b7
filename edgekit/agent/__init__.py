"""The on-device agent (server), its client and LAN discovery."""
