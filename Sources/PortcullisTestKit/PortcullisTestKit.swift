// \(m) — placeholder, see ARCHITECTURE.md
