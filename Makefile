# oprec_fdw: PGXS build of the extension, its regression tests and tooling.

MODULE_big = oprec_fdw
OBJS = \
	src/oprec_fdw.o \
	src/import.o \
	src/option.o \
	src/option_value.o \
	src/column.o \
	src/scan_plan.o \
	src/pushdown.o \
	src/filters.o \
	src/estimate.o \
	src/jit_choice.o \
	src/join.o \
	src/chain.o \
	src/listing.o \
	src/scan.o \
	src/cache.o \
	src/mirror.o \
	src/mirror_worker.o \
	src/convert.o \
	src/json.o \
	src/json_memory.o \
	src/service.o \
	src/request.o \
	src/report.o \
	src/session.o \
	src/credentials.o \
	src/pace.o \
	src/http.o \
	src/api/apis.o \
	src/api/feishu.o \
	src/api/huawei.o \
	src/api/huawei_sign.o

EXTENSION = oprec_fdw
EXTVERSION = 1.0
# the release: META.json's version, make dist's archive, the Debian package's
DISTVERSION = 1.0.0
# the first version's script and the updates from it: CREATE EXTENSION of
# a later version runs them in turn, so a new install and an updated one
# cannot differ
DATA = sql/oprec_fdw--0.1.sql sql/oprec_fdw--0.1--1.0.sql
PGFILEDESC = "oprec_fdw - operation-record APIs as foreign tables"

REGRESS = init options feishu_types feishu_pushdown feishu_paging feishu_errors feishu_explain \
	huawei_records huawei_auth huawei_errors transfer_lifetime hostile_answers security tokens shared_tokens retries pacing shared_pace \
	id_conditions joins estimates jit_choice connections import column_mapping local_copy long_ranges concurrency listing moving_listing users mirrors mirror_worker
REGRESS_OPTS = --inputdir=. --outputdir=test/results

PG_CPPFLAGS = -I$(srcdir)/src -DOPREC_FDW_VERSION='"$(EXTVERSION)"' $(shell pkg-config --cflags libcurl jansson 2>/dev/null)
SHLIB_LINK = $(shell pkg-config --libs libcurl jansson 2>/dev/null || echo -lcurl -ljansson)

EXTRA_CLEAN = test/results test/unit/test_huawei_sign

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Every object depends on the shared header (PGXS tracks no header
# dependencies by itself).
$(OBJS): src/oprec_fdw.h src/oprec_api.h src/json_read.h
src/api/huawei.o src/api/huawei_sign.o: src/api/huawei_sign.h

# Unit test of the AK/SK signer, built against libpgcommon (no server).
test/unit/test_huawei_sign: test/unit/test_huawei_sign.c src/api/huawei_sign.c src/api/huawei_sign.h
	$(CC) $(CFLAGS) -DFRONTEND -I$(includedir_internal) -I$(includedir_server) -I$(srcdir)/src \
		test/unit/test_huawei_sign.c src/api/huawei_sign.c \
		-L$(pkglibdir) -L$(libdir) -lpgcommon -lpgport -lcrypto -lm -o $@

unittest: test/unit/test_huawei_sign
	test/unit/test_huawei_sign

.PHONY: unittest

# The PGXN upload: the committed tree, META.json at its top
# (oprec_fdw-1.0.0/META.json); test/check_meta.py checks META.json.
dist:
	git -C $(srcdir) archive --format zip --prefix=$(EXTENSION)-$(DISTVERSION)/ \
		-o $(abspath $(EXTENSION)-$(DISTVERSION).zip) HEAD

.PHONY: dist

# ----------------------------------------------------------------------
# Fuzzing and sanitizer runs (test/fuzz/, test/sanitize.sh); nothing
# here is built or installed by the targets above.
#   make fuzz [FUZZ_SECONDS=60]   build both fuzz targets and run each
#   make sanitize                 the regression suite under ASan
FUZZ_SECONDS ?= 60

fuzz:
	test/fuzz/run.sh $(FUZZ_SECONDS)

sanitize:
	test/sanitize.sh

.PHONY: fuzz sanitize
