#!/usr/bin/env bash
# Starts a lab OpenLDAP server for this example: slapd on 127.0.0.1:3890
# (StartTLS) with a throwaway CA, seeded with seed.ldif. It writes the CA to
# ca.pem beside main.hcl, so `jitform -C examples/openldap plan` works as is.
#
#   examples/openldap/lab.sh start     # prints the export line for the bind password
#   examples/openldap/lab.sh stop
#
# Needs slapd, ldap-utils and openssl (Debian: apt-get install slapd ldap-utils openssl).
# The lab lives in $LAB_DIR (default /tmp/jitform-openldap-lab); nothing else is touched.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
lab=${LAB_DIR:-/tmp/jitform-openldap-lab}
port=${LAB_PORT:-3890}
password=lab-admin-secret
export PATH="$PATH:/usr/sbin:/sbin"

stop() {
  if [ -f "$lab/slapd.pid" ]; then
    kill "$(cat "$lab/slapd.pid")" 2>/dev/null || true
    for _ in $(seq 50); do [ -f "$lab/slapd.pid" ] || break; sleep 0.1; done
  fi
  rm -rf "$lab"
}

case "${1:-start}" in
stop) stop; echo "lab stopped" >&2; exit 0 ;;
start) ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac

for c in slapd slapadd openssl; do
  command -v "$c" >/dev/null || { echo "lab: $c is missing (apt-get install slapd ldap-utils openssl)" >&2; exit 1; }
done
stop
mkdir -p "$lab/db"
chmod 700 "$lab"

# A CA and a server certificate for 127.0.0.1 (libldap checks the address).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
  -subj "/CN=jitform lab CA" -keyout "$lab/ca.key" -out "$lab/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
  -keyout "$lab/server.key" -out "$lab/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$lab/san.ext"
openssl x509 -req -in "$lab/server.csr" -CA "$lab/ca.pem" -CAkey "$lab/ca.key" -CAcreateserial \
  -days 30 -extfile "$lab/san.ext" -out "$lab/server.pem" 2>/dev/null

# The sudo-ldap schema (sudoers.ldap(5); Debian ships it with sudo-ldap as
# schema.OpenLDAP): sudoRole entries for sudo_role blocks.
cat > "$lab/sudo.schema" <<'SCHEMA'
attributetype ( 1.3.6.1.4.1.15953.9.1.1 NAME 'sudoUser' DESC 'User(s) who may  run sudo'
	EQUALITY caseExactMatch SUBSTR caseExactSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
attributetype ( 1.3.6.1.4.1.15953.9.1.2 NAME 'sudoHost' DESC 'Host(s) who may run sudo'
	EQUALITY caseExactIA5Match SUBSTR caseExactIA5SubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.26 )
attributetype ( 1.3.6.1.4.1.15953.9.1.3 NAME 'sudoCommand' DESC 'Command(s) to be executed by sudo'
	EQUALITY caseExactIA5Match SYNTAX 1.3.6.1.4.1.1466.115.121.1.26 )
attributetype ( 1.3.6.1.4.1.15953.9.1.4 NAME 'sudoRunAs' DESC 'User(s) impersonated by sudo (deprecated)'
	EQUALITY caseExactIA5Match SYNTAX 1.3.6.1.4.1.1466.115.121.1.26 )
attributetype ( 1.3.6.1.4.1.15953.9.1.5 NAME 'sudoOption' DESC 'Options(s) followed by sudo'
	EQUALITY caseExactIA5Match SYNTAX 1.3.6.1.4.1.1466.115.121.1.26 )
attributetype ( 1.3.6.1.4.1.15953.9.1.6 NAME 'sudoRunAsUser' DESC 'User(s) impersonated by sudo'
	EQUALITY caseExactMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
attributetype ( 1.3.6.1.4.1.15953.9.1.7 NAME 'sudoRunAsGroup' DESC 'Group(s) impersonated by sudo'
	EQUALITY caseExactMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
attributetype ( 1.3.6.1.4.1.15953.9.1.8 NAME 'sudoNotBefore' DESC 'Start of time interval for which the entry is valid'
	EQUALITY generalizedTimeMatch ORDERING generalizedTimeOrderingMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.24 )
attributetype ( 1.3.6.1.4.1.15953.9.1.9 NAME 'sudoNotAfter' DESC 'End of time interval for which the entry is valid'
	EQUALITY generalizedTimeMatch ORDERING generalizedTimeOrderingMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.24 )
attributetype ( 1.3.6.1.4.1.15953.9.1.10 NAME 'sudoOrder' DESC 'an integer to order the sudoRole entries'
	EQUALITY integerMatch ORDERING integerOrderingMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 )
objectclass ( 1.3.6.1.4.1.15953.9.2.1 NAME 'sudoRole' SUP top STRUCTURAL DESC 'Sudoer Entries'
	MUST ( cn )
	MAY ( sudoUser $ sudoHost $ sudoCommand $ sudoRunAs $ sudoRunAsUser $ sudoRunAsGroup $
		sudoOption $ sudoOrder $ sudoNotBefore $ sudoNotAfter $ description ) )
SCHEMA

# ppolicy (its schema is built into slapd 2.5's overlay) locks an entry
# with pwdAccountLockedTime: account blocks.
cat > "$lab/slapd.conf" <<CONF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
include $lab/sudo.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
moduleload refint
moduleload ppolicy
pidfile $lab/slapd.pid
TLSCertificateFile $lab/server.pem
TLSCertificateKeyFile $lab/server.key
TLSCACertificateFile $lab/ca.pem
database mdb
suffix "dc=example,dc=org"
rootdn "cn=admin,dc=example,dc=org"
rootpw $password
directory $lab/db
maxsize 104857600
overlay memberof
overlay refint
refint_attributes member uniqueMember
overlay ppolicy
ppolicy_default "cn=default,ou=policies,dc=example,dc=org"
ppolicy_use_lockout
CONF

{
  printf 'dn: dc=example,dc=org\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n'
  printf 'dn: ou=people,dc=example,dc=org\nobjectClass: organizationalUnit\nou: people\n\n'
  printf 'dn: ou=groups,dc=example,dc=org\nobjectClass: organizationalUnit\nou: groups\n\n'
  cat "$here/seed.ldif"
} > "$lab/seed.ldif"
slapadd -f "$lab/slapd.conf" -l "$lab/seed.ldif" >/dev/null 2>&1 || { slapadd -f "$lab/slapd.conf" -l "$lab/seed.ldif"; exit 1; }
slapd -f "$lab/slapd.conf" -h "ldap://127.0.0.1:$port/"
for _ in $(seq 50); do [ -f "$lab/slapd.pid" ] && break; sleep 0.1; done
cp "$lab/ca.pem" "$here/ca.pem"
echo "lab slapd on ldap://127.0.0.1:$port (StartTLS), CA written to $here/ca.pem" >&2
echo "export JITFORM_LDAP_PASSWORD=$password"
