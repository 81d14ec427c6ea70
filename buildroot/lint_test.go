// Package buildroot holds faxbox's BR2_EXTERNAL tree; this test is the
// project's own lint of it (structure, required symbols). The checks that
// need Buildroot's source are not here.
package buildroot

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func read(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestExternalTree(t *testing.T) {
	if d := read(t, "external.desc"); !strings.HasPrefix(d, "name: FAXBOX\n") {
		t.Errorf("external.desc must start with name: FAXBOX")
	}
	cfg := read(t, "Config.in")
	pkgs, _ := filepath.Glob("package/*")
	if len(pkgs) == 0 {
		t.Fatal("no packages")
	}
	for _, p := range pkgs {
		name := filepath.Base(p)
		if !strings.Contains(cfg, `source "$BR2_EXTERNAL_FAXBOX_PATH/package/`+name+`/Config.in"`) {
			t.Errorf("Config.in does not source package %s", name)
		}
		in := read(t, filepath.Join(p, "Config.in"))
		sym := "BR2_PACKAGE_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		if !strings.Contains(in, "config "+sym+"\n") {
			t.Errorf("%s/Config.in does not define %s", p, sym)
		}
		mk := read(t, filepath.Join(p, name+".mk"))
		up := strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		for _, want := range []string{up + "_VERSION =", up + "_SITE =", up + "_LICENSE =", "$(eval $("} {
			if !strings.Contains(mk, want) {
				t.Errorf("%s.mk lacks %q", name, want)
			}
		}
	}
	ext := read(t, "external.mk")
	for _, want := range []string{"filter-out --without-spandsp", "--with-spandsp", "ASTERISK_DEPENDENCIES += spandsp", "$(ASTERISK_TARGET_CONFIGURE): $(SPANDSP_TARGET_INSTALL_STAGING)"} {
		if !strings.Contains(ext, want) {
			t.Errorf("external.mk lacks %q", want)
		}
	}
}

func TestDefconfigsHaveRequiredSymbols(t *testing.T) {
	var req []string
	for _, l := range strings.Split(read(t, "required-symbols.txt"), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			req = append(req, l)
		}
	}
	defs, _ := filepath.Glob("configs/*_defconfig")
	if len(defs) < 2 {
		t.Fatalf("defconfigs: %v", defs)
	}
	for _, d := range defs {
		lines := map[string]bool{}
		for _, l := range strings.Split(read(t, d), "\n") {
			lines[strings.TrimSpace(l)] = true
		}
		for _, r := range req {
			if !lines[r] {
				t.Errorf("%s lacks %s", filepath.Base(d), r)
			}
		}
	}
	if pc := read(t, "configs/faxbox_pc_x86_64_defconfig"); !strings.Contains(pc, "BR2_PACKAGE_DAHDI_LINUX=y") || !strings.Contains(pc, "BR2_PACKAGE_LIBPRI=y") {
		t.Error("the pc_x86_64 image needs DAHDI and libpri")
	}
}

// TestBoardFiles: every file a defconfig names under the external tree
// exists (scripts executable), and GRUB's root=PARTUUID is the root
// partition's UUID in the pc_x86_64 genimage.cfg.
func TestBoardFiles(t *testing.T) {
	ref := regexp.MustCompile(`\$\(BR2_EXTERNAL_FAXBOX_PATH\)/([A-Za-z0-9_./-]+)`)
	defs, _ := filepath.Glob("configs/*_defconfig")
	for _, d := range defs {
		for _, m := range ref.FindAllStringSubmatch(read(t, d), -1) {
			st, err := os.Stat(m[1])
			if err != nil {
				t.Errorf("%s names %s: %v", filepath.Base(d), m[1], err)
				continue
			}
			if strings.HasSuffix(m[1], ".sh") && st.Mode()&0o111 == 0 {
				t.Errorf("%s is not executable", m[1])
			}
		}
	}
	gi := read(t, "board/faxbox/pc-x86_64/genimage.cfg")
	uuid := regexp.MustCompile(`partition root \{[^}]*partition-uuid = ([0-9a-f-]{36})`).FindStringSubmatch(gi)
	if uuid == nil {
		t.Fatal("pc-x86_64/genimage.cfg: the root partition has no partition-uuid")
	}
	if g := read(t, "board/faxbox/pc-x86_64/grub.cfg"); !strings.Contains(g, "root=PARTUUID="+uuid[1]+" ") {
		t.Errorf("grub.cfg does not boot the root partition %s", uuid[1])
	}
	for _, want := range []string{"partition boot {", "partition-type-uuid = U", "bootable = true", `label = "faxbox-data"`, "empty = true", `image = "rootfs.squashfs"`} {
		if !strings.Contains(gi, want) {
			t.Errorf("pc-x86_64/genimage.cfg lacks %q", want)
		}
	}
}
