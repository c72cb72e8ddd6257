# Developer targets. `go test ./...` is what CI runs; it includes the
# 2,000-variant hostile-input sweep (internal/hostile, see SECURITY.md).

GO ?= go

.PHONY: test test-short hostile hostile-ci fuzz

test:
	$(GO) test -timeout 30m ./...

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

# A 2,000-variant sweep with its report.
hostile-ci:
	CTRLIFT_HOSTILE_VARIANTS=2000 CTRLIFT_HOSTILE_REPORT=$(HOSTILE_REPORT) $(GO) test ./internal/hostile -timeout 30m -v

# Every fuzz target for FUZZTIME each, one after the other.
FUZZTIME ?= 10m
fuzz:
	@for spec in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs grep -H '^func Fuzz' | \
		sed -E 's|^(.*)/[^/]*_test.go:func (Fuzz[A-Za-z0-9_]*).*|\1:\2|' | sort -u); do \
		pkg=$${spec%%:*}; fn=$${spec##*:}; \
		echo "== $$pkg $$fn ($(FUZZTIME))"; \
		$(GO) test $$pkg -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) || exit 1; \
	done
