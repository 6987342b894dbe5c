// Command relay joins the node's network namespace to the host: run inside that namespace, it
// listens on Unix sockets (in the test's folder, which both sides see) and relays each
// connection to a TCP address of the namespace. The test bed listens on the host's 127.0.0.1 and
// connects through these sockets, so no link or route joins the namespace to the host.
//
//	relay SOCKET=HOST:PORT [SOCKET=HOST:PORT ...]
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: relay SOCKET=HOST:PORT ...")
		os.Exit(2)
	}
	for _, pair := range os.Args[1:] {
		socket, target, ok := strings.Cut(pair, "=")
		if !ok {
			fmt.Fprintf(os.Stderr, "relay: %q is not SOCKET=HOST:PORT\n", pair)
			os.Exit(2)
		}
		_ = os.Remove(socket)
		listener, err := net.Listen("unix", socket)
		if err != nil {
			fmt.Fprintf(os.Stderr, "relay: %v\n", err)
			os.Exit(1)
		}
		defer listener.Close()
		go serve(listener, target)
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	<-signals
}

func serve(listener net.Listener, target string) {
	for {
		conn, err := listener.Accept()
		if err != nil {
			return
		}
		go relay(conn, target)
	}
}

func relay(conn net.Conn, target string) {
	defer conn.Close()
	upstream, err := net.Dial("tcp", target)
	if err != nil {
		fmt.Fprintf(os.Stderr, "relay: %v\n", err)
		return
	}
	defer upstream.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(upstream, conn); closeWrite(upstream); done <- struct{}{} }()
	go func() { _, _ = io.Copy(conn, upstream); closeWrite(conn); done <- struct{}{} }()
	<-done
	<-done
}

// closeWrite passes an end of stream on, so that each side sees the other's close.
func closeWrite(c net.Conn) {
	if w, ok := c.(interface{ CloseWrite() error }); ok {
		_ = w.CloseWrite()
	}
}
