include $(sort $(wildcard $(BR2_EXTERNAL_FAXBOX_PATH)/package/*/*.mk))

# Buildroot's asterisk recipe configures --without-spandsp, so
# res_fax_spandsp is not built: turn fax back on. Asterisk 22.10's
# res_fax_spandsp.c already supports the spandsp 3 API (no patch needed).
ifeq ($(BR2_PACKAGE_ASTERISK)$(BR2_PACKAGE_SPANDSP),yy)
ASTERISK_CONF_OPTS := $(filter-out --without-spandsp,$(ASTERISK_CONF_OPTS)) --with-spandsp=$(STAGING_DIR)/usr
ASTERISK_DEPENDENCIES += spandsp
# This file is read after asterisk.mk has generated its rules, so the
# dependency above is too late for them: order the configure step by hand.
$(ASTERISK_TARGET_CONFIGURE): $(SPANDSP_TARGET_INSTALL_STAGING)
endif
