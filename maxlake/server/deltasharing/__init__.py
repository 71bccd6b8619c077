"""The open Delta Sharing protocol over curated sets, beside the ``/v1/datasets`` API.

Mapping: share = the caller's grants (one share, ``MAXLAKE_SHARE_NAME``), schema = dataset,
table = split, table version = dataset version. Modules: :mod:`.catalog` (names and the read
decision), :mod:`.paging` (list pages), :mod:`.schema` (Arrow to Delta schema), :mod:`.actions`
(response lines), :mod:`.signing` (file URLs), :mod:`.errors` (error bodies), :mod:`.routes`
(the endpoints), :mod:`.openapi`. docs/DATASETS.md describes what is served and what is left out.
"""
