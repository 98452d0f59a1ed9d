/**
 * A bundled subset of the OMA LwM2M object registry, written by us from the facts in
 * shared/reference/lwm2m-1.2-mqtt.md §4 (parsed from OpenMobileAlliance/lwm2m-registry XML) and
 * other resources of these objects that are well known. One row per resource:
 * [id, name, type, operations, multiple, mandatory, unit?].
 */
export type Row = [number, string, string, 'R' | 'W' | 'RW' | 'E' | '', boolean, boolean, string?];

export interface ObjectRow {
  id: number;
  name: string;
  version: string;
  multiple: boolean;
  defaultUnit?: string;
  resources: Row[];
}

const S = 'String';
const I = 'Integer';
const U = 'Unsigned Integer';
const F = 'Float';
const B = 'Boolean';
const O = 'Opaque';
const T = 'Time';
const L = 'Objlnk';
const N = 'none';

export const CORE_OBJECTS: ObjectRow[] = [
  {
    id: 0,
    name: 'LwM2M Security',
    version: '1.2',
    multiple: true,
    resources: [
      [0, 'LwM2M Server URI', S, '', false, true],
      [1, 'Bootstrap-Server', B, '', false, true],
      [2, 'Security Mode', I, '', false, true],
      [3, 'Public Key or Identity', O, '', false, true],
      [4, 'Server Public Key', O, '', false, true],
      [5, 'Secret Key', O, '', false, true],
      [6, 'SMS Security Mode', I, '', false, false],
      [7, 'SMS Binding Key Parameters', O, '', false, false],
      [8, 'SMS Binding Secret Key(s)', O, '', false, false],
      [9, 'LwM2M Server SMS Number', S, '', false, false],
      [10, 'Short Server ID', I, '', false, false],
      [11, 'Client Hold Off Time', I, '', false, false, 's'],
      [12, 'Bootstrap-Server Account Timeout', I, '', false, false, 's'],
      [26, 'MQTT Server', L, '', false, false],
      [27, 'LwM2M COSE Security', L, '', true, false],
    ],
  },
  {
    id: 1,
    name: 'LwM2M Server',
    version: '1.2',
    multiple: true,
    resources: [
      [0, 'Short Server ID', I, 'R', false, true],
      [1, 'Lifetime', I, 'RW', false, true, 's'],
      [2, 'Default Minimum Period', I, 'RW', false, false, 's'],
      [3, 'Default Maximum Period', I, 'RW', false, false, 's'],
      [4, 'Disable', N, 'E', false, false],
      [5, 'Disable Timeout', I, 'RW', false, false, 's'],
      [6, 'Notification Storing When Disabled or Offline', B, 'RW', false, true],
      [7, 'Binding', S, 'RW', false, true],
      [8, 'Registration Update Trigger', N, 'E', false, true],
      [9, 'Bootstrap-Request Trigger', N, 'E', false, false],
      [10, 'APN Link', L, 'RW', false, false],
      [11, 'TLS-DTLS Alert Code', U, 'R', false, false],
      [12, 'Last Bootstrapped', T, 'R', false, false],
      [13, 'Registration Priority Order', U, 'RW', false, false],
      [14, 'Initial Registration Delay Timer', U, 'RW', false, false, 's'],
      [15, 'Registration Failure Block', B, 'RW', false, false],
      [16, 'Bootstrap on Registration Failure', B, 'RW', false, false],
      [17, 'Communication Retry Count', U, 'RW', false, false],
      [18, 'Communication Retry Timer', U, 'RW', false, false, 's'],
      [19, 'Communication Sequence Delay Timer', U, 'RW', false, false, 's'],
      [20, 'Communication Sequence Retry Count', U, 'RW', false, false],
      [21, 'Trigger', B, 'RW', false, false],
      [22, 'Preferred Transport', S, 'RW', false, false],
      [23, 'Mute Send', B, 'RW', false, false],
      [26, 'Default Notification Mode', I, 'RW', false, false],
    ],
  },
  {
    id: 2,
    name: 'LwM2M Access Control',
    version: '1.1',
    multiple: true,
    resources: [
      [0, 'Object ID', I, 'R', false, true],
      [1, 'Object Instance ID', I, 'R', false, true],
      [2, 'ACL', I, 'RW', true, false],
      [3, 'Access Control Owner', I, 'RW', false, true],
    ],
  },
  {
    id: 3,
    name: 'Device',
    version: '1.2',
    multiple: false,
    resources: [
      [0, 'Manufacturer', S, 'R', false, false],
      [1, 'Model Number', S, 'R', false, false],
      [2, 'Serial Number', S, 'R', false, false],
      [3, 'Firmware Version', S, 'R', false, false],
      [4, 'Reboot', N, 'E', false, true],
      [5, 'Factory Reset', N, 'E', false, false],
      [6, 'Available Power Sources', I, 'R', true, false],
      [7, 'Power Source Voltage', I, 'R', true, false, 'mV'],
      [8, 'Power Source Current', I, 'R', true, false, 'mA'],
      [9, 'Battery Level', I, 'R', false, false, '%'],
      [10, 'Memory Free', I, 'R', false, false, 'KB'],
      [11, 'Error Code', I, 'R', true, true],
      [12, 'Reset Error Code', N, 'E', false, false],
      [13, 'Current Time', T, 'RW', false, false],
      [14, 'UTC Offset', S, 'RW', false, false],
      [15, 'Timezone', S, 'RW', false, false],
      [16, 'Supported Binding and Modes', S, 'R', false, true],
      [17, 'Device Type', S, 'R', false, false],
      [18, 'Hardware Version', S, 'R', false, false],
      [19, 'Software Version', S, 'R', false, false],
      [20, 'Battery Status', I, 'R', false, false],
      [21, 'Memory Total', I, 'R', false, false, 'KB'],
      [22, 'ExtDevInfo', L, 'R', true, false],
    ],
  },
  {
    id: 4,
    name: 'Connectivity Monitoring',
    version: '1.3',
    multiple: false,
    resources: [
      [0, 'Network Bearer', I, 'R', false, true],
      [1, 'Available Network Bearer', I, 'R', true, true],
      [2, 'Radio Signal Strength', I, 'R', false, true, 'dBm'],
      [3, 'Link Quality', I, 'R', false, false],
      [4, 'IP Addresses', S, 'R', true, true],
      [5, 'Router IP Addresses', S, 'R', true, false],
      [6, 'Link Utilization', I, 'R', false, false, '%'],
      [7, 'APN', S, 'R', true, false],
      [8, 'Cell ID', I, 'R', false, false],
      [9, 'SMNC', I, 'R', false, false],
      [10, 'SMCC', I, 'R', false, false],
      [11, 'SignalSNR', I, 'R', false, false, 'dB'],
      [12, 'LAC', I, 'R', false, false],
    ],
  },
  {
    id: 5,
    name: 'Firmware Update',
    version: '1.2',
    multiple: false,
    resources: [
      [0, 'Package', O, 'W', false, true],
      [1, 'Package URI', S, 'RW', false, true],
      [2, 'Update', N, 'E', false, true],
      [3, 'State', I, 'R', false, true],
      [5, 'Update Result', I, 'R', false, true],
      [6, 'PkgName', S, 'R', false, false],
      [7, 'PkgVersion', S, 'R', false, false],
      [8, 'Firmware Update Protocol Support', I, 'R', true, false],
      [9, 'Firmware Update Delivery Method', I, 'R', false, true],
      [10, 'Cancel', N, 'E', false, false],
    ],
  },
  {
    id: 6,
    name: 'Location',
    version: '1.0',
    multiple: false,
    resources: [
      [0, 'Latitude', F, 'R', false, true],
      [1, 'Longitude', F, 'R', false, true],
      [2, 'Altitude', F, 'R', false, false, 'm'],
      [3, 'Radius', F, 'R', false, false, 'm'],
      [4, 'Velocity', O, 'R', false, false],
      [5, 'Timestamp', T, 'R', false, true],
      [6, 'Speed', F, 'R', false, false, 'm/s'],
    ],
  },
  {
    id: 7,
    name: 'Connectivity Statistics',
    version: '1.0',
    multiple: false,
    resources: [
      [0, 'SMS Tx Counter', I, 'R', false, false],
      [1, 'SMS Rx Counter', I, 'R', false, false],
      [2, 'Tx Data', I, 'R', false, false, 'kB'],
      [3, 'Rx Data', I, 'R', false, false, 'kB'],
      [4, 'Max Message Size', I, 'R', false, false, 'B'],
      [5, 'Average Message Size', I, 'R', false, false, 'B'],
      [6, 'Start', N, 'E', false, true],
      [7, 'Stop', N, 'E', false, true],
      [8, 'Collection Period', I, 'RW', false, false, 's'],
    ],
  },
];

/** Resources shared by the IPSO sensor objects; `null` unit = the object's default unit. */
const SENSOR_VALUE: Row = [5700, 'Sensor Value', F, 'R', false, true];
const SENSOR_UNITS: Row = [5701, 'Sensor Units', S, 'R', false, false];
const MIN_MAX: Row[] = [
  [5601, 'Min Measured Value', F, 'R', false, false],
  [5602, 'Max Measured Value', F, 'R', false, false],
  [5603, 'Min Range Value', F, 'R', false, false],
  [5604, 'Max Range Value', F, 'R', false, false],
  [5605, 'Reset Min and Max Measured Values', N, 'E', false, false],
];
const COMMON_TAIL: Row[] = [
  [5750, 'Application Type', S, 'RW', false, false],
  [5518, 'Timestamp', T, 'R', false, false],
  [6050, 'Fractional Timestamp', F, 'R', false, false, 's'],
  [6042, 'Measurement Quality Indicator', I, 'R', false, false],
  [6049, 'Measurement Quality Level', I, 'R', false, false],
];
const CALIBRATION: Row = [5821, 'Current Calibration', F, 'RW', false, false];

function ipso(
  id: number,
  name: string,
  defaultUnit: string | undefined,
  extra: Row[],
  minMax = true,
): ObjectRow {
  const row: ObjectRow = {
    id,
    name,
    version: '1.1',
    multiple: true,
    resources: [SENSOR_VALUE, SENSOR_UNITS, ...(minMax ? MIN_MAX : []), ...COMMON_TAIL, ...extra],
  };
  if (defaultUnit !== undefined) row.defaultUnit = defaultUnit;
  return row;
}

export const IPSO_OBJECTS: ObjectRow[] = [
  ipso(3300, 'Generic Sensor', undefined, [[5751, 'Sensor Type', S, 'R', false, false]]),
  ipso(3303, 'Temperature', 'Cel', []),
  ipso(3304, 'Humidity', '%RH', []),
  ipso(3316, 'Voltage', 'V', [CALIBRATION]),
  ipso(3317, 'Current', 'A', [CALIBRATION]),
  ipso(3323, 'Pressure', 'Pa', [CALIBRATION]),
  ipso(3328, 'Power', 'W', [CALIBRATION]),
  ipso(3331, 'Energy', 'Wh', [[5822, 'Reset Cumulative Energy', N, 'E', false, false]], false),
];

/** Resources whose unit is the object's default unit (the measured quantity). */
export const DEFAULT_UNIT_RESOURCES = new Set([5700, 5601, 5602, 5603, 5604]);
