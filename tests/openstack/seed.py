#!/usr/bin/python3
"""Seed the loopback OpenStack with identity data and test resources.

usage: seed.py identity   -> projects/users/roles/services/endpoints
       seed.py resources  -> image, flavors, network/subnet, security group,
                             keypair, application credential (writes run/env.sh)
Uses openstacksdk in one process (the openstack CLI costs ~1.5 s per call).
"""
import json
import os
import sys

import openstack

S = os.environ.get('STACK_DIR', '/var/tmp/autoscaler-openstack')
NEUTRON_PORT = 9296
AUTH = dict(auth_url='http://127.0.0.1:5000/v3', user_domain_name='Default',
            project_domain_name='Default', region_name='RegionOne')


def conn(user, pw, project):
    return openstack.connect(username=user, password=pw, project_name=project, **AUTH)


def identity():
    c = conn('admin', 'admin', 'admin')
    idn = c.identity

    def role(name):
        return idn.find_role(name) or idn.create_role(name=name)

    def project(name):
        return (idn.find_project(name, domain_id='default')
                or idn.create_project(name=name, domain_id='default'))

    def user(name, pw, proj):
        return (idn.find_user(name, domain_id='default')
                or idn.create_user(name=name, password=pw, domain_id='default',
                                   default_project_id=proj.id))

    admin, member, reader, service_role = role('admin'), role('member'), role('reader'), role('service')
    service, demo = project('service'), project('demo')
    u = user('demo', 'demo', demo)
    idn.assign_project_role_to_user(demo, u, member)
    for s in ('nova', 'glance', 'placement', 'neutron'):
        su = user(s, s, service)
        idn.assign_project_role_to_user(service, su, admin)
        idn.assign_project_role_to_user(service, su, service_role)
    eps = {'compute': ('nova', 'http://127.0.0.1:8774/v2.1'),
           'image': ('glance', 'http://127.0.0.1:9292'),
           'placement': ('placement', 'http://127.0.0.1:8778'),
           'network': ('neutron', 'http://127.0.0.1:%d' % NEUTRON_PORT)}
    for typ, (name, url) in eps.items():
        svc = (next(iter(idn.services(type=typ)), None)
               or idn.create_service(name=name, type=typ, is_enabled=True))
        have = {e.interface for e in idn.endpoints(service_id=svc.id)}
        for itf in ('public', 'internal', 'admin'):
            if itf not in have:
                idn.create_endpoint(service_id=svc.id, interface=itf, url=url,
                                    region_id='RegionOne')
    print('identity: done')


def resources():
    a = conn('admin', 'admin', 'admin')
    d = conn('demo', 'demo', 'demo')
    # image (public, 1 MiB of zeros: the fake virt driver never reads it)
    img = a.image.find_image('fake-image')
    if not img:
        path = S + '/data/fake-image.raw'
        with open(path, 'wb') as f:
            f.write(b'\0' * 1048576)
        img = a.image.create_image(name='fake-image', filename=path, disk_format='raw',
                                   container_format='bare', visibility='public', wait=True)
    # flavors; 'huge' can never be scheduled -> NoValidHost -> server ERROR
    for name, vcpus, ram, disk in (('m1.tiny', 1, 256, 1), ('m1.small', 1, 512, 1),
                                   ('m1.medium', 2, 2048, 10), ('huge', 2000, 512, 1)):
        if not a.compute.find_flavor(name):
            a.compute.create_flavor(name=name, vcpus=vcpus, ram=ram, disk=disk)
    # shared network
    net = a.network.find_network('runner-net')
    if not net:
        net = a.network.create_network(name='runner-net', is_shared=True)
        a.network.create_subnet(network_id=net.id, name='runner-subnet', ip_version=4,
                                cidr='10.10.0.0/24')
    # demo project: security group, keypair, application credential
    if not d.network.find_security_group('runner-sg', project_id=d.current_project_id):
        d.network.create_security_group(name='runner-sg', description='runners')
    if not d.compute.find_keypair('k1'):
        with open(S + '/data/test_key.pub') as f:
            d.compute.create_keypair(name='k1', public_key=f.read())
    uid = d.current_user_id
    ac = d.identity.find_application_credential(uid, 'autoscaler')
    if ac:
        d.identity.delete_application_credential(uid, ac.id)
    ac = d.identity.create_application_credential(uid, name='autoscaler', secret='autoscaler-secret')
    out = {'OS_AUTH_URL': 'http://127.0.0.1:5000/v3', 'OS_AUTH_TYPE': 'v3applicationcredential',
           'OS_APPLICATION_CREDENTIAL_ID': ac.id,
           'OS_APPLICATION_CREDENTIAL_SECRET': 'autoscaler-secret',
           'OS_REGION_NAME': 'RegionOne', 'STACK_IMAGE_ID': img.id,
           'STACK_NETWORK_ID': net.id, 'STACK_DEMO_PROJECT_ID': d.current_project_id}
    with open(S + '/run/appcred.env', 'w') as f:
        for k, v in out.items():
            f.write('export %s=%s\n' % (k, v))
    print('resources: done', json.dumps(out))


if __name__ == '__main__':
    {'identity': identity, 'resources': resources}[sys.argv[1]]()
