"""deployer: rolling deployments across a fleet, striped over datacenters."""

__version__ = "0.1.0"
