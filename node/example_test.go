package node_test

import (
	"fmt"
	"io"
	"log"
	"os"

	"github.com/ctrlift/ctrlift/export"
	"github.com/ctrlift/ctrlift/node"
)

// The bundled example: a GKE-like node disk written by real containerd.
const exampleImage = "../testdata/images/example/wordpress-node.raw.zst"

// Export a container from a disk image as a tar.
func Example() {
	n, err := node.Open([]string{exampleImage}, node.Options{NoCache: true})
	if err != nil {
		log.Fatal(err)
	}
	defer n.Close()
	res, err := n.Export("blog/wordpress-6d8f7b9c5-q2lzx/wordpress", io.Discard, node.ExportOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Entries, "entries")
	// Output: 378 entries
}

func ExampleNode_Containers() {
	n, err := node.Open([]string{exampleImage}, node.Options{NoCache: true})
	if err != nil {
		log.Fatal(err)
	}
	defer n.Close()
	l, err := n.Containers(node.ListOptions{})
	if err != nil {
		log.Fatal(err)
	}
	for _, c := range l.Shown {
		fmt.Println(c.PodNamespace+"/"+c.PodName+"/"+c.ContainerName, c.Status, *c.ExitCode)
	}
	fmt.Println(l.Hidden.Total(), "hidden")
	// Output:
	// blog/wordpress-6d8f7b9c5-q2lzx/apache-exporter exited 2
	// blog/wordpress-6d8f7b9c5-q2lzx/apache-exporter exited 2
	// blog/mysql-0/mysql exited 0
	// blog/wordpress-6d8f7b9c5-q2lzx/wordpress exited 0
	// 2 hidden
}

func ExampleNode_Resolve() {
	n, err := node.Open([]string{exampleImage}, node.Options{NoCache: true})
	if err != nil {
		log.Fatal(err)
	}
	defer n.Close()
	c, err := n.Resolve("containerd://eed0799779d8")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(node.Describe(c))
	// Output: k8s.io/eed0799779d813328a9dc977731a0a053d02e317873d58ea5f6dff984d40b548 (blog/wordpress-6d8f7b9c5-q2lzx/wordpress)
}

func ExampleNode_Diff() {
	n, err := node.Open([]string{exampleImage}, node.Options{NoCache: true})
	if err != nil {
		log.Fatal(err)
	}
	defer n.Close()
	err = n.Diff("blog/wordpress-6d8f7b9c5-q2lzx/wordpress", node.DiffOptions{Volumes: node.VolumesNone}, func(r export.Record) error {
		if r.Change == "added" && r.Type == "file" {
			fmt.Println(r.Change, r.Path)
		}
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// added /etc/hostname
	// added /etc/hosts
	// added /etc/resolv.conf
	// added /tmp/.wpc
	// added /var/spool/cron/crontabs/www-data
	// added /var/www/html/wp-content/uploads/2024/01/thumb-150x150.php
	// added /var/www/html/wp-content/uploads/shell.php
}

func ExampleNode_ExportAll() {
	n, err := node.Open([]string{exampleImage}, node.Options{NoCache: true})
	if err != nil {
		log.Fatal(err)
	}
	defer n.Close()
	dir, err := os.MkdirTemp("", "ctrlift-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	idx, err := n.ExportAll(dir, node.ExportAllOptions{ExportOptions: node.ExportOptions{Compression: export.Zstd}})
	if err != nil {
		log.Fatal(err)
	}
	for _, c := range idx.Containers {
		fmt.Println(c.File, c.Tar.Entries)
	}
	fmt.Println(len(idx.Skipped), "skipped")
	// Output:
	// k8s.io_blog_wordpress-6d8f7b9c5-q2lzx_apache-exporter_4d9b23b2baa8.tar.zst 304
	// k8s.io_blog_wordpress-6d8f7b9c5-q2lzx_apache-exporter_a03b0bde54af.tar.zst 304
	// k8s.io_blog_mysql-0_mysql_ac997aac2288.tar.zst 324
	// k8s.io_blog_wordpress-6d8f7b9c5-q2lzx_wordpress_eed0799779d8.tar.zst 378
	// 2 skipped
}
