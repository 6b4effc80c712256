"""Resource packages (zip / tar.gz of images, templates, static data) for the target version.

``entries`` decides, from the entry list and manifest alone, whether a package may be extracted
(pure: no I/O); ``archive`` lists and streams entries; ``install`` extracts validated entries into a
staging folder, verifies them and swaps the folder into place; ``static_data`` loads data files
into tables. A package that fails any check changes nothing outside its staging folder.
"""
