# (the file storage plugin's helper fills this in)
