// Command notaplugin is an ordinary program: the host must refuse it.
package main

import "fmt"

func main() { fmt.Println("hello, I am not a plugin") }
