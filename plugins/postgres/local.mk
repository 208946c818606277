# (the postgres storage plugin's helper fills this in)
if WITH_POSTGRES
endif
