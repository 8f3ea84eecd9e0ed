from .version import package_version

__version__ = package_version()
