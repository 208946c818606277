EXTRA_DIST += packaging/install-deps.sh packaging/torpor.conf
