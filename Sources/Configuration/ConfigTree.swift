// Configuration — INI with fail2ban semantics
