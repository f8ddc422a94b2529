module github.com/silo-run/silo

go 1.26.8
