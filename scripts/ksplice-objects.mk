# The per-object pass of Makefile.ksplice, run in the object tree once the
# kernel is built: one ksplice-obj invocation per object (in parallel under
# -j), then one combine per target. Object lists come from .ksplice/.

KSPLICE_PASS ?= snap
KSPLICE_ONLY_TARGETS ?= %
Q ?= @
state := .ksplice

vmlinux-objs := $(shell cat $(state)/vmlinux.objs 2>/dev/null)
modules := $(shell sed 's/:.*//' $(state)/modules 2>/dev/null)
module-parts = $(shell sed -n 's|^$(1): ||p' $(state)/modules)

targets := $(if $(filter $(KSPLICE_ONLY_TARGETS),vmlinux),vmlinux) \
	$(filter $(KSPLICE_ONLY_TARGETS),$(notdir $(modules)))
target-path = $(if $(filter vmlinux,$(1)),vmlinux,$(filter %/$(1) $(1),$(modules)))
target-parts = $(if $(filter vmlinux,$(1)),$(vmlinux-objs),$(call module-parts,$(call target-path,$(1))))
all-parts := $(sort $(foreach t,$(targets),$(call target-parts,$(t))))

# Objects whose old code is always included (for matching), with or without change.
extra = $(filter-out $(KSPLICE_EXCLUDE_MATCH),$(filter $(KSPLICE_EXTRA_MATCH),$(1)))

PHONY := ksplice-pass FORCE
ksplice-pass: $(foreach t,$(targets),$(call target-path,$(t)).o.KSPLICE)
ifneq ($(KSPLICE_KMODSRC),)
ifeq ($(KSPLICE_PASS),diff)
ksplice-pass: $(foreach t,$(targets),$(KSPLICE_KMODSRC)/$(t).mod.KSPLICE)
endif
endif

# One marker per object.
ifeq ($(KSPLICE_PASS),snap)
$(addsuffix .KSPLICE,$(all-parts)): %.KSPLICE: FORCE
	$(Q)$(if $(Q),echo '  SNAP    $*'; )"$(KSPLICE_OBJ)" snap $@
else
$(addsuffix .KSPLICE,$(all-parts)): %.KSPLICE: FORCE
	$(Q)if [ -e $*.KSPLICE_pre ] || [ ! -e $@ ]; then \
		$(if $(Q),echo '  DIFF    $*'; )"$(KSPLICE_OBJ)" diff $@; \
	fi
endif

$(addsuffix .KSPLICE_old_code,$(call extra,$(all-parts))): %.KSPLICE_old_code: %.KSPLICE FORCE
	$(Q)$(if $(Q),echo '  OLDCODE $*'; )"$(KSPLICE_OBJ)" old_code $@

# One combined marker per target. A single-object module is its own part.
define target-rule
$(call target-path,$(1)).o.KSPLICE: $(filter-out $(call target-path,$(1)).o,$(call target-parts,$(1))) \
	$$(addsuffix .KSPLICE,$(filter-out $(call target-path,$(1)).o,$(call target-parts,$(1)))) \
	$$(addsuffix .KSPLICE_old_code,$$(call extra,$(call target-parts,$(1)))) FORCE
	$$(Q)$$(if $$(Q),echo '  COMBINE $(1)'; )"$$(KSPLICE_OBJ)" combine $$@ \
		$$(addsuffix .KSPLICE,$(filter-out $(call target-path,$(1)).o,$(call target-parts,$(1)))) \
		$$(addsuffix .KSPLICE_old_code,$$(call extra,$(call target-parts,$(1)))) \
		$(if $(filter vmlinux,$(1)),,$(call target-path,$(1)).o)
endef
$(foreach t,$(filter-out $(patsubst %.o,%,$(all-parts)),$(foreach t,$(targets),$(call target-path,$(t)))),\
	$(eval $(call target-rule,$(notdir $(t)))))

# With KSPLICE_KMODSRC: the changed targets' code for kmodsrc.
define kmodsrc-rule
$(KSPLICE_KMODSRC)/$(1).mod.KSPLICE: $(call target-path,$(1)).o.KSPLICE FORCE
	$$(Q)if [ -s $$< ]; then \
		$$(if $$(Q),echo '  MOD     $(1)';) \
		mkdir -p $(KSPLICE_KMODSRC) && \
		cp -a $$< $$(<:.KSPLICE=.KSPLICE_new_code) $$(<:.KSPLICE=.KSPLICE_old_code) $(KSPLICE_KMODSRC)/ && \
		echo "$(call target-path,$(1))" > $$@.tmp && mv $$@.tmp $$@; \
	else rm -f $$@; fi
endef
$(if $(KSPLICE_KMODSRC),$(foreach t,$(targets),$(eval $(call kmodsrc-rule,$(t)))))

FORCE:
.PHONY: $(PHONY)
