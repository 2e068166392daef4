enum NommuBenchPlaceholder {}
