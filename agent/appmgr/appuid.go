package appmgr

// AppOfUID returns the installed app that runs as uid (its own user), if
// any: the in-app socket knows its callers by it. An app granted root has
// no uid of its own, and a removed app's kept id names no installed app.
func (m *Manager) AppOfUID(uid int) (string, bool) {
	if uid < FirstAppID || uid > LastAppID {
		return "", false
	}
	m.st.Lock()
	defer m.st.Unlock()
	ids := map[string]int{}
	if err := m.st.Get(appIDsKey, &ids); err != nil {
		return "", false
	}
	apps := m.apps()
	for name, id := range ids {
		if id == uid && apps[name] != nil && !apps[name].removing() {
			return name, true
		}
	}
	return "", false
}
