package store

func childStress(dir string) error { return nil }
