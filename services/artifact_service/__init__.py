"""The artifact-service: the object service (`/api/object/v1/`) and the data
plane of the file back end (signed PUT/GET of bytes under
`/api/journal/v1/blobs/`). Bytes never pass through the api-gateway."""
