################################################################################
#
# faxbox
#
################################################################################

FAXBOX_VERSION = local
FAXBOX_SITE = $(BR2_EXTERNAL_FAXBOX_PATH)/..
FAXBOX_SITE_METHOD = local
FAXBOX_LICENSE = Proprietary
FAXBOX_GOMOD = github.com/faxbox/faxbox
FAXBOX_BUILD_TARGETS = cmd/faxbox
FAXBOX_GO_ENV = GOFLAGS=-mod=vendor GOPROXY=off
FAXBOX_LDFLAGS = -X main.version=$(FAXBOX_VERSION)

define FAXBOX_INSTALL_INIT_SYSV
	$(INSTALL) -D -m 0755 $(@D)/services/init/S20dahdi $(TARGET_DIR)/etc/init.d/S20dahdi
	$(INSTALL) -D -m 0755 $(@D)/services/init/S50asterisk $(TARGET_DIR)/etc/init.d/S50asterisk
	$(INSTALL) -D -m 0755 $(@D)/services/init/S95faxbox $(TARGET_DIR)/etc/init.d/S95faxbox
endef

$(eval $(golang-package))
