# Developer targets. `go test ./...` is README's test command; it runs a
# 52-variant sample of the hostile-input sweep (internal/hostile, see
# SECURITY.md). CI (.ci/run) runs the full sweep after it: make hostile-ci.

GO ?= go

.PHONY: test test-short hostile hostile-ci fuzz

test:
	$(GO) test ./...

test-short:
	$(GO) test -short ./...

# The deep hostile-input sweep: 20,000 broken variants of the fixtures,
# every container of each. About 80 minutes on 2 cores. Override with
#   make hostile HOSTILE_VARIANTS=50000 HOSTILE_SEED=7
# Failing variants are copied to $(HOSTILE_KEEP) for a closer look.
HOSTILE_VARIANTS ?= 20000
HOSTILE_SEED ?= 1
HOSTILE_REPORT ?= $(CURDIR)/hostile-report.md
HOSTILE_KEEP ?= $(CURDIR)/hostile-failures
hostile:
	CTRLIFT_HOSTILE_VARIANTS=$(HOSTILE_VARIANTS) CTRLIFT_HOSTILE_SEED=$(HOSTILE_SEED) \
	CTRLIFT_HOSTILE_REPORT=$(HOSTILE_REPORT) CTRLIFT_HOSTILE_KEEP=$(HOSTILE_KEEP) \
		$(GO) test ./internal/hostile -run TestSweep -timeout 0 -v
	@echo "report: $(HOSTILE_REPORT)"

# CI's full sweep (every class at least 34 times) with its report.
hostile-ci:
	CTRLIFT_HOSTILE_PER_CLASS=34 CTRLIFT_HOSTILE_REPORT=$(HOSTILE_REPORT) $(GO) test -count=1 ./internal/hostile -run 'TestSweep$$' -timeout 60m -v

# Every fuzz target for FUZZTIME each, one after the other.
FUZZTIME ?= 10m
fuzz:
	@for spec in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs grep -H '^func Fuzz' | \
		sed -E 's|^(.*)/[^/]*_test.go:func (Fuzz[A-Za-z0-9_]*).*|\1:\2|' | sort -u); do \
		pkg=$${spec%%:*}; fn=$${spec##*:}; \
		echo "== $$pkg $$fn ($(FUZZTIME))"; \
		$(GO) test $$pkg -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) || exit 1; \
	done
