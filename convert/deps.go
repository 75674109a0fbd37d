package convert

import (
	_ "github.com/xuri/excelize/v2"
	_ "golang.org/x/text/encoding/simplifiedchinese"
)
