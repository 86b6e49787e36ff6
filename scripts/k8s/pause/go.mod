module conure.local/pause

go 1.23
