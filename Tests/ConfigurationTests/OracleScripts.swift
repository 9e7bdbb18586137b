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
    result.append({'name': name, 'mode': None, 'spec': name, **resolve(name, {})})
    for m in modes_of(name):
        result.append({'name': name, 'mode': m, 'spec': '%s[mode=%s]' % (name, m), **resolve(name, {'mode': m})})
json.dump(result, sys.stdout)
"""#
