// A typed use of the package, checked by `npm run typecheck` (tsc --noEmit --strict).
import { Actor, Database, NotFound, ValidationError, type HealthData, type NewHealthData, type Page, type Patient } from 'austa';

async function main(): Promise<void> {
  const db = await Database.open({ url: 'sqlite::memory:', masterKey: Buffer.alloc(32, 1).toString('base64') });
  await db.migrate();
  const clinic = await db.organizations.create({ name: 'Clínica Tipada', organizationType: 'CLINIC' });
  const scope = await db.scope(clinic.id, Actor.platform(), { purpose: 'typed example' });

  const ana: Patient = await scope.patients.create({ firstName: 'Ana', lastName: 'Souza', phone: '+5511987654321' });
  const createdAt: Date = ana.createdAt;
  const name: string | null = ana.firstName;

  const rows: NewHealthData[] = [90, 131, 145].map((value) => ({
    patientId: ana.id,
    dataType: 'LAB_RESULT',
    category: 'DIABETES',
    labResults: { glucose: { value, unit: 'mg/dL' } },
  }));
  const written: number = await scope.healthData.importRows(rows, { batchSize: 500 });
  const page: Page<HealthData> = await scope.healthData.forPatient(ana.id, 'LAB_RESULT', { limit: 10 });
  for await (const row of scope.healthData.stream({ pageSize: 2 })) {
    const type: 'LAB_RESULT' | string = row.dataType;
    void type;
  }
  try {
    await scope.patients.get(clinic.id);
  } catch (error) {
    if (error instanceof NotFound) console.log(error.code);
    else if (error instanceof ValidationError) console.log(error.field);
    else throw error;
  }
  const report = await scope.audit.verify();
  console.log(createdAt.toISOString(), name !== null, written, page.items.length, report.broken === null);
  await db.close();
}

// The inputs are typed: tsc refuses a misspelled field, a missing required one or a wrong enum name.
async function mistakes(db: Database, organizationId: string): Promise<void> {
  const scope = await db.scope(organizationId, Actor.platform());
  // @ts-expect-error `firstname` is not a field of NewPatient (and `firstName` is missing)
  await scope.patients.create({ firstname: 'Ana', lastName: 'Souza', phone: '+5511987654321' });
  // @ts-expect-error `VITALS` is not a HealthDataType
  await scope.healthData.forPatient(organizationId, 'VITALS');
}

void main();
void mistakes;
