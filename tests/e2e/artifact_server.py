"""`taskjournal <command>` with the stand-ins of tests/storage_fakes.py for
what the objects branch has not merged yet (a BlobStore factory, the object
service's Journal commands). Where the real ones exist they are used."""

import sys

from taskjournal.services.cli import main
from taskjournal.shared import storage
from taskjournal.shared.journal import Journal
from tests.storage_fakes import MemoryBlobStore, install_fake_objects

FAKE_STORAGE = not hasattr(storage, "open_blob_store")
FAKE_OBJECTS = not hasattr(Journal, "create_upload")

if __name__ == "__main__":
    if FAKE_STORAGE:
        storage.open_blob_store = lambda settings: MemoryBlobStore(settings.public_root_url)
    if FAKE_OBJECTS:
        install_fake_objects(Journal)
    sys.exit(main())
