#!/usr/bin/env python3
"""Extracts what the SIEM-format tests check from the published schemas into
test/fixtures/siem-schemas.json: ECS's required fields and the types and allowed values of the
field sets xdp-ids writes, and OCSF's required attributes, enums and object constraints of the
classes it writes (Detection Finding, Application Error).

usage: scripts/siem-schemas.py ECS_REPO ECS_TAG OCSF_REPO OCSF_TAG > test/fixtures/siem-schemas.json
(git checkouts of github.com/elastic/ecs and github.com/ocsf/ocsf-schema)"""
import json
import subprocess
import sys

import yaml

ecs_repo, ecs_tag, ocsf_repo, ocsf_tag = sys.argv[1:5]
ECS_SETS = ('base', 'ecs', 'event', 'rule', 'source', 'destination', 'related', 'observer', 'user', 'threat')


def show(repo, tag, path):
    return subprocess.check_output(['git', 'show', f'{tag}:{path}'], cwd=repo)


flat = yaml.safe_load(show(ecs_repo, ecs_tag, 'generated/ecs/ecs_flat.yml'))
ecs_fields = {}
for name, f in flat.items():
    if name.split('.')[0] not in ECS_SETS and f.get('flat_name', name).split('.')[0] not in ('@timestamp', 'message', 'tags', 'labels'):
        continue
    if name.startswith('threat.') and not name.startswith(('threat.framework', 'threat.technique.', 'threat.tactic.')):
        continue
    entry = {'type': f['type']}
    if f.get('allowed_values'):
        entry['allowed'] = [a['name'] for a in f['allowed_values']]
        expected = {a['name']: a['expected_event_types'] for a in f['allowed_values'] if a.get('expected_event_types')}
        if expected:
            entry['expected_event_types'] = expected
    ecs_fields[name] = entry
ecs = {
    'source': f'github.com/elastic/ecs {ecs_tag} generated/ecs/ecs_flat.yml',
    'version': ecs_tag.lstrip('v'),
    'required': sorted(n for n, f in flat.items() if f.get('required')),
    'fields': ecs_fields,
}


def ocsf(path):
    return json.loads(show(ocsf_repo, ocsf_tag, path))


dictionary = ocsf('dictionary.json')['attributes']
categories = ocsf('categories.json')['attributes']


def merged_event(paths):
    out = {}
    for p in paths:
        for k, v in ocsf(p)['attributes'].items():
            if k != '$include':
                out[k] = {**out.get(k, {}), **v}
    return out


def event_class(paths, category):
    attrs = merged_event(paths)
    uid = ocsf(paths[-1])['uid']
    cat = categories[category]['uid']
    return {
        'class_uid': cat * 1000 + uid, 'category_uid': cat,
        'required': sorted(k for k, v in attrs.items() if v.get('requirement') == 'required' and not v.get('profile')),
        'attributes': sorted(attrs),
        'enums': {e: sorted(int(k) for k in {**dictionary.get(e, {}).get('enum', {}), **attrs.get(e, {}).get('enum', {})}) for e in ('activity_id', 'severity_id', 'status_id') if e in attrs},
    }


def object_rules(name):
    chain, d = [], ocsf(f'objects/{name}.json')
    chain.append(d)
    while d.get('extends') and d['extends'] != 'object':
        d = ocsf(f"objects/{d['extends']}.json")
        chain.append(d)
    attrs = {}
    for x in reversed(chain):
        for k, v in x['attributes'].items():
            if k != '$include':
                attrs[k] = {**attrs.get(k, {}), **v}
    own = chain[0].get('constraints') or {}
    return {
        'required': sorted(k for k, v in attrs.items() if v.get('requirement') == 'required' and not v.get('profile')),
        'attributes': sorted(attrs),
        **({'at_least_one': own['at_least_one']} if 'at_least_one' in own else {}),
    }


profile = ocsf('profiles/security_control.json')['attributes']
result = {
    'ecs': ecs,
    'ocsf': {
        'source': f'github.com/ocsf/ocsf-schema {ocsf_tag}',
        'version': ocsf_tag.lstrip('v'),
        'classes': {
            'detection_finding': event_class(['events/base_event.json', 'events/findings/finding.json', 'events/findings/detection_finding.json'], 'findings'),
            'application_error': event_class(['events/base_event.json', 'events/application/application.json', 'events/application/application_error.json'], 'application'),
        },
        'profiles': {'security_control': sorted(profile)},
        'objects': {o: object_rules(o) for o in ('finding_info', 'metadata', 'product', 'attack', 'technique', 'tactic', 'network_endpoint', 'observable', 'remediation', 'analytic', 'evidences', 'related_event')},
        'enums': {e: sorted(int(k) for k in {**dictionary.get(e, {}).get('enum', {}), **profile.get(e, {}).get('enum', {})}) for e in ('action_id', 'disposition_id')},
        'types': {k: v.get('type') for k, v in dictionary.items()},
    },
}
json.dump(result, sys.stdout, indent=1, sort_keys=True)
sys.stdout.write('\n')
