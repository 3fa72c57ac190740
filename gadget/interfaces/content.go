package interfaces

func init() {
	register(&Interface{
		Name:    "content",
		Summary: "a folder of another app's data, shared read-only or read-write",
		Notes: "The providing app declares a content slot in its app.yaml (a folder below its common data, " +
			"and whether it may be written); the consuming app declares a content plug with a target, a " +
			"folder below its own common data where the shared one appears. The sandbox binds the folder " +
			"there, read-only unless the slot allows writing, following no symbolic link; AppArmor " +
			"allows it as the consumer's own data. The folder's own permissions still apply: to be written " +
			"by connected apps (their users differ from the provider's), the provider makes it writable by " +
			"others (mode 0777 or 1777); no other app sees its data. Connections are made by the gadget's " +
			"connections or an operator. A disconnect takes effect at the next launch.",
		Share: func(s Share) Grant {
			access := "r"
			if s.Write {
				access = "rwlk"
			}
			return Grant{
				Mounts:   []Mount{{Source: s.Source, Target: s.Target, Write: s.Write}},
				AppArmor: []string{s.Target + "/ r,", s.Target + "/** m" + access + ","},
			}
		},
	})
}
