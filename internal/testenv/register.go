package testenv

// RegisterMappingBody is a conversion mapping for the generated test
// registers of convert/runner and cmd/hubctl, after its name and
// description and before its date_formats: the license type, authority and
// area, UTF-8 CSV, and the columns.
const RegisterMappingBody = `license_type: 11100000000013338W011
authority:
  name: 湖南省市场监督管理局（演示）
  code: 11430000006122244L
area_code: "430100"
format: csv
encoding: utf-8
columns:
  number: 注册号
  holder.name: 企业名称
  holder.code: 统一社会信用代码
  issue_date: 发证日期
  fields.name: 企业名称
  fields.unified_social_credit_code: 统一社会信用代码
  fields.entity_type: 企业类型
  fields.legal_representative: 法定代表人
  fields.established_date: 成立日期
  fields.business_term_to: 营业期限至
  fields.address: 住所
  fields.business_scope: 经营范围
  fields.registration_authority: 登记机关
`
