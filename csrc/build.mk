# csrc/build.mk: make's reading of csrc/sources.txt, included by tests/c/Makefile and
# benchmarks/Makefile so that they compile the same files with the same ISA flags as setup.py.
#
# Set before including: CSRC (the path of csrc/), OUT (where the objects go), CC, and
# CSRC_CFLAGS (the flags of every compile: warnings, optimisation, OpenMP, sanitizers).
# Defines:
#   CSRC_OBJS     $(OUT)/csrc/<file>.o for every file of every module in sources.txt (tests and
#                 benchmarks link them all), with the rule that compiles them;
#   CSRC_DEFINES  -DCCONV_HAVE_<ISA> for each ISA of sources.txt on an x86-64 target, to be
#                 used by every compile that includes csrc/ headers;
#   CSRC_HEADERS  every header under csrc/ (each object depends on all of them).
# The target is the compiler's (`$(CC) -dumpmachine`), so cross compilers need no extra setting:
# the -ISA.c files are compiled, with their flags, only for x86-64 targets and left out elsewhere.
# A .c file under csrc/ that sources.txt does not list, or a listed file that is missing, stops
# the build.

CSRC_MANIFEST := $(CSRC)/sources.txt
CSRC_HASH := \#
# awk program prefix: drop the comment of each line of the manifest
CSRC_UNCOMMENT := { sub(/$(CSRC_HASH).*/, "") }

# the files of every module as listed, then with the globs expanded, in sorted order
CSRC_LISTED := $(shell awk '$(CSRC_UNCOMMENT) $$1 == "source" { for (i = 3; i <= NF; i++) print $$i }' $(CSRC_MANIFEST))
CSRC_ALL := $(sort $(wildcard $(addprefix $(CSRC)/,$(CSRC_LISTED))))
# the ISA names, and the GCC-style flags of ISA $(1)
CSRC_ISAS := $(sort $(shell awk '$(CSRC_UNCOMMENT) $$1 == "isa" { print $$2 }' $(CSRC_MANIFEST)))
csrc_isa_flags = $(shell awk \
    '$(CSRC_UNCOMMENT) $$1 == "isa" && $$2 == "$(1)" && $$3 == "gcc" { $$1 = $$2 = $$3 = ""; print }' $(CSRC_MANIFEST))
CSRC_HEADERS := $(wildcard $(CSRC)/*.h $(CSRC)/*/*.h)

CSRC_UNLISTED := $(filter-out $(CSRC_ALL),$(wildcard $(CSRC)/*.c $(CSRC)/*/*.c))
ifneq ($(CSRC_UNLISTED),)
$(error $(CSRC_UNLISTED): in no module of $(CSRC_MANIFEST); add a `source` line for it)
endif
CSRC_MISSING := $(strip $(foreach f,$(CSRC_LISTED),$(if $(findstring *,$(f)),,$(if $(wildcard $(CSRC)/$(f)),,$(f)))))
ifneq ($(CSRC_MISSING),)
$(error $(CSRC_MISSING): listed in $(CSRC_MANIFEST) but not in $(CSRC))
endif

CSRC_MACHINE := $(shell $(CC) -dumpmachine)
ifneq ($(filter x86_64-% amd64-%,$(CSRC_MACHINE)),)
CSRC_SOURCES := $(CSRC_ALL)
CSRC_DEFINES := $(foreach isa,$(CSRC_ISAS),-DCCONV_HAVE_$(shell echo $(isa) | tr a-z A-Z))
else
CSRC_SOURCES := $(filter-out $(foreach isa,$(CSRC_ISAS),%-$(isa).c),$(CSRC_ALL))
CSRC_DEFINES :=
endif

CSRC_OBJS := $(patsubst $(CSRC)/%.c,$(OUT)/csrc/%.o,$(CSRC_SOURCES))

# each -ISA.c object gets its ISA's flags on top of the common ones
$(foreach isa,$(CSRC_ISAS),$(eval $(OUT)/csrc/%-$(isa).o: CSRC_ISA_FLAGS := $(call csrc_isa_flags,$(isa))))

$(OUT)/csrc/%.o: $(CSRC)/%.c $(CSRC_HEADERS) $(CSRC_MANIFEST)
	@mkdir -p $(@D)
	$(CC) $(CSRC_CFLAGS) $(CSRC_DEFINES) $(CSRC_ISA_FLAGS) -I$(CSRC) -c $< -o $@
