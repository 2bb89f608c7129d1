"""A Genesys Cloud Outbound emulator: OAuth login, contact lists, contacts and CSV imports.

It serves the Platform API paths the product uses, with the shapes of the official SDK's models and
the error bodies, status codes and limits of the public API reference. It listens on 127.0.0.1
unless the allow_non_loopback_host setting is on, as in a container. Behaviour the public record
leaves open is a setting in EmulatorSettings. It does not emulate campaigns, dialing, DNC lists,
contact list filters, Excel files or import templates.

Start it as a child process with GenesysEmulator, or in the foreground with
`python -m local_stack.genesys_emulator --port 8089`.
"""

from local_stack.genesys_emulator.app import create_app
from local_stack.genesys_emulator.launcher import GenesysEmulator
from local_stack.genesys_emulator.settings import EmulatorSettings, OAuthClientSettings

__all__ = ["EmulatorSettings", "GenesysEmulator", "OAuthClientSettings", "create_app"]
