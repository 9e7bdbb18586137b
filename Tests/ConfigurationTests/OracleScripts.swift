// Test oracle scripts: fail2ban 1.0.2's own reader, run with the installed python3 at test time.

/// Resolves every filter (and every mode it offers) with fail2ban's FilterReader; prints JSON.
let filterOracleScript = #"""
    # Test oracle: resolves every filter in ROOT/filter.d with fail2ban's own reader and prints JSON.
    # Run by FilterOracleTests at test time; needs the installed fail2ban package.
    import glob, json, os, re, sys
    from fail2ban.client.filterreader import FilterReader

    root = sys.argv[1]
    names = sys.argv[2:] or sorted(os.path.basename(p)[:-5] for p in glob.glob(os.path.join(root, 'filter.d', '*.conf')))

    def modes_of(name):
        path = os.path.join(root, 'filter.d', name + '.conf')
        text = open(path, encoding='utf-8', errors='replace').read()
        pats = set(re.findall(r'<([\w\-]*)<mode>([\w\-]*)>', text))
        opts = set(re.findall(r'^([\w\-]+)\s*[=:]', text, re.M))
        modes = set()
        for pre, suf in pats:
            for o in opts:
                m = re.match('^' + re.escape(pre) + r'([a-z0-9]+)' + re.escape(suf) + '$', o)
                if m: modes.add(m.group(1))
        return sorted(modes)

    def resolve(name, args):
        out = {'prefregex': None, 'failregex': [], 'ignoreregex': [], 'maxlines': None,
               'datepattern': None, 'journalmatch': []}
        try:
            f = FilterReader(name, 'j', dict(args), basedir=root)
            if not f.read():
                return {'error': 'read failed'}
            f.getOptions({})
            for c in f.convert():
                if c[0] == 'multi-set':
                    key, vals = c[2], c[3]
                else:
                    key, vals = c[2], c[3:]
                if key == 'addfailregex': out['failregex'] += list(vals) if c[0] == 'multi-set' else [vals[0]]
                elif key == 'addignoreregex': out['ignoreregex'] += list(vals) if c[0] == 'multi-set' else [vals[0]]
                elif key == 'prefregex': out['prefregex'] = vals[0]
                elif key == 'maxlines': out['maxlines'] = int(vals[0])
                elif key == 'datepattern': out['datepattern'] = vals[0]
                elif key == 'addjournalmatch':
                    group = []
                    for t in vals:
                        if t == '+':
                            out['journalmatch'].append(group); group = []
                        else: group.append(t)
                    out['journalmatch'].append(group)
                else: out.setdefault('other', []).append(c)
        except Exception as e:
            return {'error': '%s: %s' % (type(e).__name__, e)}
        return out

    result = []
    for name in names:
        if '[' in name:
            from fail2ban.helpers import extractOptions
            base, args = extractOptions(name)
            result.append({'name': base, 'mode': None, 'spec': name, **resolve(base, args)})
            continue
        result.append({'name': name, 'mode': None, 'spec': name, **resolve(name, {})})
        for m in modes_of(name):
            result.append({'name': name, 'mode': m, 'spec': '%s[mode=%s]' % (name, m), **resolve(name, {'mode': m})})
    json.dump(result, sys.stdout)
    """#

/// Enables every jail of ROOT/jail.conf through a jail.local (ROOT must be a scratch copy) and resolves them
/// with fail2ban's JailsReader; prints JSON (options, values, action specs, resolved filter and actions).
let jailOracleScript = #"""
    # Test oracle: enables every jail of ROOT/jail.conf through a jail.local and resolves them with fail2ban's
    # JailsReader; prints JSON. ROOT must be a scratch copy (jail.local is written).
    import glob, json, os, re, sys
    from fail2ban.client.jailsreader import JailsReader
    from fail2ban.helpers import splitWithOptions, extractOptions

    root = sys.argv[1]
    asis = len(sys.argv) > 2 and sys.argv[2] == 'asis'
    names = [n for n in re.findall(r'^\[([^\]]+)\]', open(os.path.join(root, 'jail.conf')).read(), re.M)
             if n not in ('INCLUDES', 'DEFAULT')]
    actions = [] if asis else sorted(os.path.basename(p)[:-5] for p in glob.glob(os.path.join(root, 'action.d', '*.conf')))
    with open(os.path.join(root, 'jail.local'), 'a' if asis else 'w') as f:
        for n in ([] if asis else names):
            f.write('[%s]\nenabled = true\n\n' % n)
        # One extra jail per action file, so that every action is resolved once.
        for a in actions:
            n = 'pcl-action-' + a
            names.append(n)
            f.write('[%s]\nenabled = true\nfilter = sshd\nlogpath = /dev/null\nport = 22,2222\naction = %s\n\n' % (n, a))

    def s(v):
        if isinstance(v, bool): return 'true' if v else 'false'
        return str(v)

    jr = JailsReader(basedir=root)
    jr.read()
    if asis:
        # The tree's own files decide which jails are enabled; report every enabled one.
        names = [n for n in jr.sections() if n not in ('INCLUDES', 'DEFAULT') and jr.get(n, 'enabled') == 'true']
    jr.getOptions(ignoreWrong=True)
    out = {}
    for j in jr.jails:
        name = j.getName()
        o = j._JailReader__opts
        rec = {'opts': {k: s(v) for k, v in o.items() if v is not None}}
        vals = {}
        for k in ('port', 'protocol', 'chain', 'banaction', 'banaction_allports', 'blocktype', 'mode', 'filter'):
            try:
                if j._cfg.has_option(name, k): vals[k] = j._cfg.get(name, k)
            except Exception as e: vals[k] = 'ERROR'
        rec['values'] = vals
        acts = []
        for a in splitWithOptions(o.get('action', '')):
            a = a.strip()
            if not a: continue
            an, aa = extractOptions(a)
            acts.append([an, aa])
        rec['actions'] = acts
        o['logpath'] = '/dev/null'
        filt = {'prefregex': None, 'failregex': [], 'ignoreregex': [], 'maxlines': None, 'datepattern': None, 'journalmatch': []}
        props = []
        try:
            for c in j.convert():
                if len(c) < 3: continue
                key = c[2]
                vals = c[3] if c[0] == 'multi-set' else c[3:]
                if key == 'addfailregex': filt['failregex'] += list(vals) if c[0] == 'multi-set' else [vals[0]]
                elif key == 'addignoreregex': filt['ignoreregex'] += list(vals) if c[0] == 'multi-set' else [vals[0]]
                elif key == 'prefregex': filt['prefregex'] = vals[0]
                elif key == 'maxlines': filt['maxlines'] = int(vals[0])
                elif key == 'datepattern': filt['datepattern'] = vals[0]
                elif key == 'addjournalmatch':
                    group = []
                    for t in vals:
                        if t == '+': filt['journalmatch'].append(group); group = []
                        else: group.append(t)
                    filt['journalmatch'].append(group)
                elif key == 'action' and c[0] == 'multi-set':
                    props.append([c[3], [[k, s(v)] for k, v in c[4] if v is not None]])
            rec['filter'] = filt
            rec['actionprops'] = props
        except Exception as e:
            rec['convertError'] = '%s: %s' % (type(e).__name__, e)
        out[name] = rec
    for n in names:
        if n not in out: out[n] = {'error': 'fail2ban rejected this jail'}
    json.dump(out, sys.stdout)
    """#

/// Converts each argument with fail2ban's MyTime.str2seconds; prints a JSON list of numbers or null (rejected).
let timeOracleScript = #"""
    import json, sys
    from fail2ban.server.mytime import MyTime
    out = []
    for s in sys.argv[1:]:
        try: out.append(float(MyTime.str2seconds(s)))
        except Exception: out.append(None)
    json.dump(out, sys.stdout)
    """#

/// Reads ROOT/fail2ban.conf (+ .local, .d/) with fail2ban's Fail2banReader; prints the resolved options as JSON.
let mainOracleScript = #"""
    import json, sys
    from fail2ban.client.fail2banreader import Fail2banReader
    r = Fail2banReader(basedir=sys.argv[1])
    r.read()
    out = {k: str(v) for k, v in r.getEarlyOptions().items()}
    r.getOptions()
    for c in r.convert():
        if c[0] == 'set': out[c[1]] = str(c[2])
    json.dump(out, sys.stdout)
    """#
