#!/usr/bin/env python3
"""Build the example node's container images without a registry.

Writes, into OUTDIR:
  wordpress.oci.tar   OCI image layout (3 layers; layer 3 has a file whiteout, a
                      directory whiteout and an opaque directory)
  mysql.oci.tar       OCI image layout (2 layers)
  docker-save.tar     docker-save style archive (manifest.json, uncompressed
                      layer.tar files) holding the pause and exporter images
  images.tsv          name, format, archive

Every layer starts from the same busybox base layer (busybox-static from
Debian plus its applet symlinks), so the images share one snapshot. Output is
byte-for-byte deterministic for a given busybox binary: fixed mtimes, sorted
entries, numeric owners, gzip without a timestamp.

Usage: mkimages.py OUTDIR [BUSYBOX]
"""

import base64
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile

MTIME = 1700000000  # 2023-11-14T22:13:20Z, same as the cos-node fixture
CREATED = "2023-11-14T22:13:20Z"

# v2 file capability: effective bit set, permitted = CAP_NET_BIND_SERVICE (10).
CAP_NET_BIND_SERVICE = bytes.fromhex("01000002" "00040000" "00000000" "00000000" "00000000")


def sha256(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


class Layer:
    """A layer as a list of tar entries; call tar() for the bytes."""

    def __init__(self, comment):
        self.comment = comment
        self.entries = {}

    def dir(self, path, mode=0o755, uid=0, gid=0):
        self.entries[path] = dict(kind="dir", mode=mode, uid=uid, gid=gid)
        return self

    def file(self, path, data, mode=0o644, uid=0, gid=0, xattrs=None):
        if isinstance(data, str):
            data = data.encode()
        self.entries[path] = dict(kind="file", data=data, mode=mode, uid=uid, gid=gid, xattrs=xattrs or {})
        return self

    def symlink(self, path, target, uid=0, gid=0):
        self.entries[path] = dict(kind="symlink", target=target, mode=0o777, uid=uid, gid=gid)
        return self

    def hardlink(self, path, to):
        t = self.entries[to]  # a hard link carries its target's metadata, as tar writers record it
        self.entries[path] = dict(kind="hardlink", target=to, mode=t["mode"], uid=t["uid"], gid=t["gid"])
        return self

    def whiteout(self, path):
        d, b = os.path.split(path)
        return self.file(os.path.join(d, ".wh." + b), b"", mode=0o644)

    def opaque(self, path):
        return self.file(os.path.join(path, ".wh..wh..opq"), b"", mode=0o644)

    def tar(self):
        # Add missing parent directories so every layer is self-contained.
        for p in list(self.entries):
            d = os.path.dirname(p)
            while d and d not in self.entries:
                self.entries[d] = dict(kind="dir", mode=0o755, uid=0, gid=0)
                d = os.path.dirname(d)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
            for path in sorted(self.entries):
                e = self.entries[path]
                ti = tarfile.TarInfo(path + ("/" if e["kind"] == "dir" else ""))
                ti.mtime = MTIME
                ti.mode = e["mode"]
                ti.uid, ti.gid = e["uid"], e["gid"]
                ti.uname = ti.gname = ""
                data = None
                if e["kind"] == "dir":
                    ti.type = tarfile.DIRTYPE
                elif e["kind"] == "file":
                    ti.type = tarfile.REGTYPE
                    data = e["data"]
                    ti.size = len(data)
                    if e["xattrs"]:
                        ti.pax_headers = {
                            "SCHILY.xattr." + k: v.decode("utf-8", "surrogateescape") for k, v in sorted(e["xattrs"].items())
                        }
                elif e["kind"] == "symlink":
                    ti.type = tarfile.SYMTYPE
                    ti.linkname = e["target"]
                elif e["kind"] == "hardlink":
                    ti.type = tarfile.LNKTYPE
                    ti.linkname = e["target"]
                tf.addfile(ti, io.BytesIO(data) if data is not None else None)
        return buf.getvalue()


def pseudo_random(seed, n):
    """Deterministic incompressible-looking bytes (for binary data files)."""
    out = bytearray()
    h = seed.encode()
    while len(out) < n:
        h = hashlib.sha256(h).digest()
        out += h
    return bytes(out[:n])


def innodb_page_file(name, pages):
    """A small InnoDB-looking tablespace: 16 KiB pages, mostly zero, with a
    header at the start of each page (compresses well, looks plausible)."""
    out = bytearray()
    for i in range(pages):
        page = bytearray(16384)
        page[0:32] = pseudo_random(f"{name}:{i}", 32)
        page[38:40] = (0x45BF if i % 2 else 0x0008).to_bytes(2, "big")
        out += page
    return bytes(out)


# ---------------------------------------------------------------------------
# Layers

def base_layer(busybox):
    with open(busybox, "rb") as f:
        bb = f.read()
    applets = subprocess.run([busybox, "--list-full"], check=True, capture_output=True, text=True).stdout.split()
    L = Layer("busybox base")
    for d in ["bin", "dev", "etc", "home", "proc", "sbin", "sys", "usr", "usr/bin", "usr/sbin",
              "usr/local", "usr/local/bin", "usr/share", "var", "var/log", "var/run", "var/lib", "var/spool"]:
        L.dir(d)
    L.dir("root", 0o700)
    L.dir("tmp", 0o1777)
    L.dir("var/tmp", 0o1777)
    L.file("bin/busybox", bb, 0o755)
    for a in applets:
        if a in ("bin/busybox", "linuxrc"):
            continue
        L.symlink(a, "/bin/busybox")
    L.file("etc/passwd",
           "root:x:0:0:root:/root:/bin/sh\n"
           "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
           "www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n"
           "mysql:x:999:999::/var/lib/mysql:/bin/false\n"
           "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")
    L.file("etc/group",
           "root:x:0:\ndaemon:x:1:\nadm:x:4:\nwww-data:x:33:\nmysql:x:999:\nnogroup:x:65534:\n")
    L.file("etc/shadow", "root:*:19675:0:99999:7:::\nwww-data:*:19675:0:99999:7:::\n", 0o640, 0, 42)
    L.file("etc/os-release",
           'PRETTY_NAME="Acme Base Linux 12"\nNAME="Acme Base Linux"\nVERSION_ID="12"\nID=acmebase\n')
    L.file("etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files dns\n")
    return L


def pause_layer():
    return Layer("pause").file("pause", (
        "#!/bin/sh\n"
        "# Sandbox holder: sleeps until told to stop.\n"
        "trap 'exit 0' TERM INT\n"
        "while :; do sleep 3600 & wait $!; done\n"), 0o755)


APACHE_CONF = """# This is the main Apache server configuration file.
ServerRoot "/etc/apache2"
PidFile ${APACHE_PID_FILE}
Timeout 300
KeepAlive On
MaxKeepAliveRequests 100
KeepAliveTimeout 5
User ${APACHE_RUN_USER}
Group ${APACHE_RUN_GROUP}
HostnameLookups Off
ErrorLog ${APACHE_LOG_DIR}/error.log
LogLevel warn
IncludeOptional mods-enabled/*.load
IncludeOptional mods-enabled/*.conf
Include ports.conf
<Directory />
\tOptions FollowSymLinks
\tAllowOverride None
\tRequire all denied
</Directory>
<Directory /var/www/>
\tOptions Indexes FollowSymLinks
\tAllowOverride None
\tRequire all granted
</Directory>
AccessFileName .htaccess
<FilesMatch "^\\.ht">
\tRequire all denied
</FilesMatch>
LogFormat "%h %l %u %t \\"%r\\" %>s %O \\"%{Referer}i\\" \\"%{User-Agent}i\\"" combined
IncludeOptional conf-enabled/*.conf
IncludeOptional sites-enabled/*.conf
"""

APACHE_FOREGROUND = """#!/bin/sh
# Stand-in for apache2-foreground: busybox httpd serves /var/www/html.
set -e
. /etc/apache2/envvars
mkdir -p /var/run/apache2 /var/lock/apache2
echo "[core:notice] [pid $$] AH00094: Command line: 'apache2 -D FOREGROUND'"
httpd -f -vv -p 8080 -h /var/www/html &
pid=$!
echo $pid > "$APACHE_PID_FILE"
trap 'echo "[mpm_prefork:notice] [pid $$] AH00169: caught SIGTERM, shutting down"; kill $pid; rm -f "$APACHE_PID_FILE"; exit 0' TERM INT
while kill -0 $pid 2>/dev/null; do wait $pid || true; done
exit 1
"""


def apache_layer():
    L = Layer("apache2 + php")
    L.file("etc/apache2/apache2.conf", APACHE_CONF)
    L.file("etc/apache2/ports.conf", "Listen 8080\n")
    L.file("etc/apache2/envvars",
           "export APACHE_RUN_USER=www-data\nexport APACHE_RUN_GROUP=www-data\n"
           "export APACHE_PID_FILE=/var/run/apache2/apache2.pid\nexport APACHE_RUN_DIR=/var/run/apache2\n"
           "export APACHE_LOCK_DIR=/var/lock/apache2\nexport APACHE_LOG_DIR=/var/log/apache2\n")
    for name, body in [("security.conf", "ServerTokens OS\nServerSignature On\nTraceEnable Off\n"),
                       ("charset.conf", "#AddDefaultCharset UTF-8\n"),
                       ("other-vhosts-access-log.conf",
                        "CustomLog ${APACHE_LOG_DIR}/other_vhosts_access.log vhost_combined\n"),
                       ("serve-cgi-bin.conf", "<IfModule mod_alias.c>\n</IfModule>\n")]:
        L.file("etc/apache2/conf-available/" + name, body)
        L.symlink("etc/apache2/conf-enabled/" + name, "../conf-available/" + name)
    L.file("etc/apache2/mods-available/php.conf",
           '<FilesMatch ".+\\.ph(ar|p|tml)$">\n    SetHandler application/x-httpd-php\n</FilesMatch>\n')
    L.file("etc/apache2/mods-available/php.load", "LoadModule php_module /usr/lib/apache2/modules/libphp.so\n")
    L.symlink("etc/apache2/mods-enabled/php.conf", "../mods-available/php.conf")
    L.symlink("etc/apache2/mods-enabled/php.load", "../mods-available/php.load")
    L.file("etc/apache2/sites-available/000-default.conf",
           "<VirtualHost *:8080>\n\tServerAdmin webmaster@localhost\n\tDocumentRoot /var/www/html\n"
           "\tErrorLog ${APACHE_LOG_DIR}/error.log\n\tCustomLog ${APACHE_LOG_DIR}/access.log combined\n"
           "</VirtualHost>\n")
    L.symlink("etc/apache2/sites-enabled/000-default.conf", "../sites-available/000-default.conf")
    L.file("usr/local/etc/php/php.ini",
           "[PHP]\nexpose_php = Off\nfile_uploads = On\nupload_max_filesize = 64M\n"
           "disable_functions =\nallow_url_fopen = On\n")
    L.dir("usr/local/etc/php/conf.d")
    L.file("usr/local/etc/php/conf.d/docker-php-ext-mysqli.ini", "extension=mysqli\n")
    L.file("usr/local/bin/apache2-foreground", APACHE_FOREGROUND, 0o755,
           xattrs={"security.capability": CAP_NET_BIND_SERVICE})
    # php and php-cli: one inode, two names.
    L.file("usr/local/bin/php", "#!/bin/sh\necho 'PHP 8.2.15 (cli) (built: Feb 13 2024)'\n", 0o755)
    L.hardlink("usr/local/bin/php-cli", "usr/local/bin/php")
    L.dir("usr/share/apache2/default-site")
    L.file("usr/share/apache2/default-site/index.html", "<html><body><h1>It works!</h1></body></html>\n")
    L.file("usr/share/apache2/default-site/icons.txt", "apache_pb.png\n")
    L.dir("var/www", 0o755)
    L.dir("var/www/html", 0o755, 33, 33)
    L.file("var/www/html/index.html", "<html><body><h1>It works!</h1></body></html>\n")
    L.dir("var/log/apache2", 0o750, 0, 4)
    L.dir("var/lock", 0o755)
    return L


WP_CONFIG = """<?php
define( 'DB_NAME', 'wordpress' );
define( 'DB_USER', 'wordpress' );
define( 'DB_PASSWORD', 'example-not-a-secret' );
define( 'DB_HOST', 'mysql.blog.svc.cluster.local' );
define( 'DB_CHARSET', 'utf8mb4' );
define( 'AUTH_KEY',         'put your unique phrase here' );
define( 'SECURE_AUTH_KEY',  'put your unique phrase here' );
$table_prefix = 'wp_';
define( 'WP_DEBUG', false );
if ( ! defined( 'ABSPATH' ) ) {
\tdefine( 'ABSPATH', __DIR__ . '/' );
}
require_once ABSPATH . 'wp-settings.php';
"""


def access_log_lines():
    lines = []
    paths = ["/", "/wp-login.php", "/wp-content/themes/twentytwentyfour/style.css", "/about/",
             "/wp-content/uploads/2024/01/header.jpg", "/feed/", "/wp-json/wp/v2/posts"]
    for i in range(120):
        ip = f"10.8.{(i * 7) % 200}.{(i * 13) % 250 + 2}"
        sec = i * 37
        ts = f"14/Nov/2023:{(sec // 3600) % 24:02d}:{(sec // 60) % 60:02d}:{sec % 60:02d} +0000"
        p = paths[i % len(paths)]
        lines.append(f'{ip} - - [{ts}] "GET {p} HTTP/1.1" 200 {1000 + i * 11} "-" "Mozilla/5.0"\n')
    return "".join(lines)


def wordpress_layer():
    L = Layer("wordpress 6.4.3")
    www = dict(uid=33, gid=33)
    html = "var/www/html/"
    L.dir("var/www/html", 0o755, **www)
    # Whiteouts and an opaque directory, as a Dockerfile's RUN rm ... would leave.
    L.whiteout(html + "index.html")                      # file whiteout (from apache layer)
    L.whiteout("usr/share/apache2/default-site")         # directory whiteout
    L.dir("etc/apache2/conf-enabled")
    L.opaque("etc/apache2/conf-enabled")                 # opaque: hides the apache layer's symlinks
    L.symlink("etc/apache2/conf-enabled/security.conf", "../conf-available/security.conf")
    L.file("etc/apache2/conf-enabled/wordpress.conf",
           "<Directory /var/www/html/wp-content/uploads>\n\t<FilesMatch \"\\.php$\">\n"
           "\t\tRequire all denied\n\t</FilesMatch>\n</Directory>\n")
    L.file("etc/apache2/sites-available/000-default.conf",
           "<VirtualHost *:8080>\n\tServerName blog.acme.example\n\tDocumentRoot /var/www/html\n"
           "\tErrorLog ${APACHE_LOG_DIR}/error.log\n\tCustomLog ${APACHE_LOG_DIR}/access.log combined\n"
           "</VirtualHost>\n")
    files = {
        "index.php": "<?php\ndefine( 'WP_USE_THEMES', true );\nrequire __DIR__ . '/wp-blog-header.php';\n",
        "wp-blog-header.php": "<?php\nrequire_once __DIR__ . '/wp-load.php';\nwp();\n",
        "wp-load.php": "<?php\ndefine( 'ABSPATH', __DIR__ . '/' );\nrequire_once ABSPATH . 'wp-config.php';\n",
        "wp-login.php": "<?php\nrequire __DIR__ . '/wp-load.php';\n// login form\n",
        "wp-settings.php": "<?php\ndefine( 'WPINC', 'wp-includes' );\nrequire ABSPATH . WPINC . '/version.php';\n",
        "xmlrpc.php": "<?php\ndefine( 'XMLRPC_REQUEST', true );\n",
        "license.txt": "WordPress - Web publishing software\n\nCopyright 2011-2023 by the contributors\n" * 20,
        "wp-includes/version.php": "<?php\n$wp_version = '6.4.3';\n$wp_db_version = 56657;\n",
        "wp-includes/functions.php": "<?php\nfunction wp_die( $message = '' ) { exit; }\n",
        "wp-admin/index.php": "<?php\nrequire_once __DIR__ . '/admin.php';\n",
        "wp-admin/admin.php": "<?php\nrequire_once dirname( __DIR__ ) . '/wp-load.php';\n",
        "wp-content/index.php": "<?php\n// Silence is golden.\n",
        "wp-content/themes/index.php": "<?php\n// Silence is golden.\n",
        "wp-content/themes/twentytwentyfour/style.css":
            "/*\nTheme Name: Twenty Twenty-Four\nVersion: 1.0\n*/\nbody { margin: 0; }\n",
        "wp-content/themes/twentytwentyfour/functions.php": "<?php\nadd_theme_support( 'post-thumbnails' );\n",
        "wp-content/plugins/index.php": "<?php\n// Silence is golden.\n",
        "wp-content/plugins/akismet/akismet.php": "<?php\n/*\nPlugin Name: Akismet Anti-spam\nVersion: 5.3\n*/\n",
        "wp-content/uploads/.htaccess": "<Files *.php>\ndeny from all\n</Files>\n",
        "wp-content/cache/page-home.html": "<html><body>cached home page</body></html>\n",
        "wp-content/cache/page-about.html": "<html><body>cached about page</body></html>\n",
        "wp-content/cache/.cache-index": "page-home.html\npage-about.html\n",
    }
    for p, body in files.items():
        L.file(html + p, body, 0o644, **www)
    L.file(html + "wp-config.php", WP_CONFIG, 0o640, **www)
    L.file(html + "wp-content/uploads/2024/01/header.jpg",
           b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + pseudo_random("header.jpg", 3000) + b"\xff\xd9", 0o644, **www)
    for d in ["wp-content", "wp-content/themes", "wp-content/themes/twentytwentyfour", "wp-content/plugins",
              "wp-content/plugins/akismet", "wp-content/uploads", "wp-content/uploads/2024",
              "wp-content/uploads/2024/01", "wp-content/cache", "wp-includes", "wp-admin"]:
        L.dir(html + d, 0o755, **www)
    L.dir("var/log/apache2", 0o750, 0, 4)
    L.file("var/log/apache2/access.log", access_log_lines(), 0o640, 0, 4)
    L.file("var/log/apache2/error.log",
           "[Tue Nov 14 22:13:20.000000 2023] [mpm_prefork:notice] [pid 1] AH00163: Apache/2.4.57 (Debian) "
           "PHP/8.2.15 configured -- resuming normal operations\n", 0o640, 0, 4)
    return L


def exporter_layer():
    L = Layer("apache_exporter")
    L.file("bin/apache_exporter", """#!/bin/sh
# Stand-in for apache_exporter: scrapes mod_status, gives up after 3 failures.
echo "level=info msg=\\"Starting apache_exporter\\" version=1.0.3 scrape_uri=$SCRAPE_URI"
fails=0
while :; do
  if wget -q -O /dev/null -T 2 "$SCRAPE_URI" 2>/dev/null; then
    fails=0
  else
    fails=$((fails+1))
    echo "level=error msg=\\"Error scraping apache\\" err=\\"unexpected status fetching $SCRAPE_URI\\" failures=$fails" >&2
  fi
  if [ $fails -ge 3 ]; then
    echo "level=error msg=\\"too many consecutive scrape failures, exiting\\"" >&2
    exit 2
  fi
  sleep 1
done
""", 0o755)
    L.file("etc/apache_exporter/web-config.yml", "# no TLS\n")
    return L


MY_CNF = """[mysqld]
pid-file        = /var/run/mysqld/mysqld.pid
socket          = /var/run/mysqld/mysqld.sock
datadir         = /var/lib/mysql
secure-file-priv= /var/lib/mysql-files
user            = mysql
log-bin         = binlog
!includedir /etc/mysql/conf.d/
"""

MYSQLD = """#!/bin/sh
# Stand-in for docker-entrypoint.sh + mysqld.
log() { echo "$(date -u +%Y-%m-%dT%H:%M:%S.000000Z) $*"; }
log "0 [System] [MY-010116] [Server] /usr/sbin/mysqld (mysqld 8.0.36) starting as process $$"
mkdir -p /var/run/mysqld
echo $$ > /var/run/mysqld/mysqld.pid
echo "./binlog.000002" >> /var/lib/mysql/binlog.index
printf '\\376bin' > /var/lib/mysql/binlog.000002
log "0 [System] [MY-010931] [Server] /usr/sbin/mysqld: ready for connections. Version: '8.0.36'  socket: '/var/run/mysqld/mysqld.sock'  port: 3306"
trap 'log "0 [System] [MY-013172] [Server] Received SHUTDOWN from user <via user signal>."; rm -f /var/run/mysqld/mysqld.pid; log "0 [System] [MY-010910] [Server] /usr/sbin/mysqld: Shutdown complete."; exit 0' TERM INT
while :; do sleep 3600 & wait $!; done
"""


def mysql_layer():
    L = Layer("mysql 8.0.36")
    my = dict(uid=999, gid=999)
    L.file("etc/mysql/my.cnf", MY_CNF)
    L.file("etc/mysql/conf.d/docker.cnf", "[mysqld]\nskip-host-cache\nskip-name-resolve\n")
    L.file("etc/mysql/conf.d/mysqldump.cnf", "[mysqldump]\nquick\nquote-names\nmax_allowed_packet = 16M\n")
    L.file("usr/local/bin/docker-entrypoint.sh", MYSQLD, 0o755)
    L.symlink("usr/sbin/mysqld", "/usr/local/bin/docker-entrypoint.sh")
    L.dir("var/lib/mysql", 0o750, **my)
    L.dir("var/lib/mysql-files", 0o700, **my)
    L.dir("var/lib/mysql/wordpress", 0o750, **my)
    L.dir("var/lib/mysql/mysql", 0o750, **my)
    L.dir("var/run/mysqld", 0o755, **my)
    L.file("var/lib/mysql/auto.cnf", "[auto]\nserver-uuid=5b7e2c1a-0f3d-11ef-9a61-0242ac110002\n", 0o640, **my)
    L.file("var/lib/mysql/ibdata1", innodb_page_file("ibdata1", 8), 0o640, **my)
    L.file("var/lib/mysql/mysql.ibd", innodb_page_file("mysql.ibd", 6), 0o640, **my)
    L.file("var/lib/mysql/binlog.000001", b"\xfebin" + pseudo_random("binlog1", 600), 0o640, **my)
    L.file("var/lib/mysql/binlog.index", "./binlog.000001\n", 0o640, **my)
    for t in ["wp_users", "wp_usermeta", "wp_posts", "wp_options", "wp_comments"]:
        L.file(f"var/lib/mysql/wordpress/{t}.ibd", innodb_page_file(t, 4), 0o640, **my)
    L.file("var/lib/mysql/mysql/general_log.CSV", "", 0o640, **my)
    return L


# ---------------------------------------------------------------------------
# Image assembly

def config_json(layers, diff_ids, cfg):
    return json.dumps({
        "architecture": "amd64",
        "os": "linux",
        "created": CREATED,
        "config": cfg,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": CREATED, "created_by": "mkimages.py: " + l.comment} for l in layers],
    }, sort_keys=True, separators=(",", ":")).encode()


def add_bytes(tf, name, data, mode=0o644):
    ti = tarfile.TarInfo(name)
    ti.size, ti.mtime, ti.mode = len(data), MTIME, mode
    ti.uname = ti.gname = ""
    tf.addfile(ti, io.BytesIO(data))


def add_dir(tf, name):
    ti = tarfile.TarInfo(name)
    ti.type, ti.mtime, ti.mode = tarfile.DIRTYPE, MTIME, 0o755
    ti.uname = ti.gname = ""
    tf.addfile(ti)


def write_oci(path, ref, layers, cfg):
    tars = [l.tar() for l in layers]
    gz = [gzip.compress(t, compresslevel=9, mtime=0) for t in tars]
    config = config_json(layers, [sha256(t) for t in tars], cfg)
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha256(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": sha256(g), "size": len(g)} for g in gz],
    }, sort_keys=True, separators=(",", ":")).encode()
    index = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": sha256(manifest), "size": len(manifest),
                       "platform": {"architecture": "amd64", "os": "linux"},
                       "annotations": {"io.containerd.image.name": ref,
                                       "org.opencontainers.image.ref.name": ref.rsplit(":", 1)[1]}}],
    }, sort_keys=True, separators=(",", ":")).encode()
    blobs = {}
    for b in [config, manifest] + gz:
        blobs[sha256(b)] = b
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        add_bytes(tf, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add_bytes(tf, "index.json", index)
        add_dir(tf, "blobs")
        add_dir(tf, "blobs/sha256")
        for d in sorted(blobs):
            add_bytes(tf, "blobs/sha256/" + d.split(":")[1], blobs[d])
    return sha256(manifest)


def write_docker_save(path, images):
    """images: list of (ref, layers, cfg). Layers are stored uncompressed, as docker save does."""
    manifest = []
    files = {}
    for ref, layers, cfg in images:
        tars = [l.tar() for l in layers]
        diff_ids = [sha256(t) for t in tars]
        config = config_json(layers, diff_ids, cfg)
        chex = sha256(config).split(":")[1]
        files[chex + ".json"] = config
        names = []
        for t, d in zip(tars, diff_ids):
            n = d.split(":")[1] + "/layer.tar"
            files[n] = t
            files[d.split(":")[1] + "/VERSION"] = b"1.0"
            names.append(n)
        manifest.append({"Config": chex + ".json", "RepoTags": [ref], "Layers": names})
    files["manifest.json"] = json.dumps(manifest, separators=(",", ":")).encode()
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        dirs = set()
        for n in sorted(files):
            d = os.path.dirname(n)
            if d and d not in dirs:
                add_dir(tf, d)
                dirs.add(d)
            add_bytes(tf, n, files[n])


PAUSE = "gke.gcr.io/pause:3.8"
WORDPRESS = "us-central1-docker.pkg.dev/acme-blog/web/wordpress:6.4.3-apache"
EXPORTER = "quay.io/acme-blog/apache-exporter:v1.0.3"
MYSQL = "us-central1-docker.pkg.dev/acme-blog/db/mysql:8.0.36"


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    out = sys.argv[1]
    busybox = sys.argv[2] if len(sys.argv) == 3 else "/bin/busybox"
    os.makedirs(out, exist_ok=True)
    base = base_layer(busybox)
    env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    rows = []
    write_oci(os.path.join(out, "wordpress.oci.tar"), WORDPRESS, [base, apache_layer(), wordpress_layer()], {
        "Env": env + ["PHP_VERSION=8.2.15", "WORDPRESS_VERSION=6.4.3"],
        "Entrypoint": ["/usr/local/bin/apache2-foreground"], "WorkingDir": "/var/www/html",
        "ExposedPorts": {"8080/tcp": {}}, "StopSignal": "SIGTERM",
        "Labels": {"org.opencontainers.image.title": "wordpress"}})
    rows.append((WORDPRESS, "oci", "wordpress.oci.tar"))
    write_oci(os.path.join(out, "mysql.oci.tar"), MYSQL, [base, mysql_layer()], {
        "Env": env + ["MYSQL_MAJOR=8.0", "MYSQL_VERSION=8.0.36-1debian12"],
        "Entrypoint": ["/usr/local/bin/docker-entrypoint.sh"], "Cmd": ["mysqld"], "User": "999:999",
        "ExposedPorts": {"3306/tcp": {}, "33060/tcp": {}}, "Volumes": {"/var/lib/mysql": {}}})
    rows.append((MYSQL, "oci", "mysql.oci.tar"))
    write_docker_save(os.path.join(out, "docker-save.tar"), [
        (PAUSE, [base, pause_layer()], {"Env": env, "Entrypoint": ["/pause"], "User": "65535:65535"}),
        (EXPORTER, [base, exporter_layer()], {
            "Env": env + ["SCRAPE_URI=http://localhost:8080/server-status?auto"],
            "Entrypoint": ["/bin/apache_exporter"], "User": "65534:65534",
            "ExposedPorts": {"9117/tcp": {}}}),
    ])
    rows.append((PAUSE, "docker", "docker-save.tar"))
    rows.append((EXPORTER, "docker", "docker-save.tar"))
    with open(os.path.join(out, "images.tsv"), "w") as f:
        for r in rows:
            f.write("\t".join(r) + "\n")


if __name__ == "__main__":
    main()
